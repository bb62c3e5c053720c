"""The streaming video propagator: a frame (and its mask, if annotated) in, the frame's mask out.

On a GPU nothing here waits for the device: stages are timed with CUDA events (read when the run's figures
are asked for), and a frame's mask and soft labels come back as :class:`HostFrame`, copied to pinned host
memory in the background, so that the next frame's work is queued before this one is written.
"""
import time
from collections import Counter
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from sfc_plugin.propagation import MaskCodec, VideoLabelLoop
from sfc_plugin.utils import prepare_image
from .backends import Backend


class HostFrame:
    """A frame's (H, W) uint8 mask and optional (k, h, w) soft labels on their way to host memory."""

    def __init__(self, ids: Tensor, soft: Optional[Tensor]) -> None:
        self._ids = ids.to('cpu', non_blocking=True)
        self._soft = soft.to('cpu', non_blocking=True) if soft is not None else None
        self._copied = None
        if ids.is_cuda:
            self._copied = torch.cuda.Event()
            self._copied.record(torch.cuda.current_stream(ids.device))

    def numpy(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The mask and the soft labels as arrays (waits for their copy only)."""
        if self._copied is not None:
            self._copied.synchronize()
        return self._ids.numpy(), self._soft.numpy() if self._soft is not None else None


class StageClock:
    """Seconds per stage: wall time on a CPU; on a GPU, CUDA events read only when :attr:`seconds` is asked for
    (so timing never makes the host wait for the device)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'
        self._seconds = Counter()
        self._events: List[Tuple[str, object, object]] = []

    def mark(self) -> Union[float, 'torch.cuda.Event']:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def add(self, stage: str, start) -> object:
        """Count the time from ``start`` (a :meth:`mark`) to now for ``stage``; returns the new mark."""
        end = self.mark()
        if self.cuda:
            self._events.append((stage, start, end))
        else:
            self._seconds[stage] += end - start
        return end

    @property
    def seconds(self) -> Counter:
        for stage, start, end in self._events:
            end.synchronize()
            self._seconds[stage] += start.elapsed_time(end) / 1e3
        self._events.clear()
        return self._seconds


class VideoPropagator:
    """One video through a backend, one frame at a time (Cutie-like ``step``), by the one video loop
    (:class:`~sfc_plugin.propagation.VideoLabelLoop`).

    The first frame must come with a mask; a later frame given a mask is a keyframe: its mask replaces the
    prediction and becomes the long memory. Masks are at the frame's size; the network sees the frame at
    ``backend.input_size(frame_size)``; the codec turns masks into soft labels and predictions back into ids.

    Args:
        backend: see :mod:`.backends`.
        codec: the video's masks codec (``MaskCodec.for_user_masks``: its label values and frame size); it decodes
            with the backend's settings' upsampling (guided by the frame, when they say so).

    Attributes:
        seconds: time per stage ('backbone', 'propagate', 'postprocess'), summed over frames (device time on a
            GPU).
    """

    def __init__(self, backend: Backend, codec: MaskCodec) -> None:
        if backend.max_labels is not None and len(codec.label_values) > backend.max_labels:
            raise ValueError(f'{len(codec.label_values)} label values {codec.label_values}, but the model takes at '
                             f'most {backend.max_labels} label channels')
        self.backend = backend
        self.loop = VideoLabelLoop(backend.new_propagator(), codec.with_guide(backend.settings))
        self.clock = StageClock(backend.device)

    @property
    def seconds(self) -> Counter:
        return self.clock.seconds

    def _features(self, image: Tensor) -> Tensor:
        start = self.clock.mark()
        feat = self.backend.features(image.to(self.backend.device, non_blocking=True)[None])
        self.clock.add('backbone', start)
        return feat

    @torch.no_grad()
    def step(self, image: Tensor, mask: Optional[np.ndarray] = None, rgb: Optional[np.ndarray] = None) -> HostFrame:
        """Segment the next frame (queued on the device; nothing waits for it).

        Args:
            image: (3, h', w') float32 RGB in [0, 1] at the backend's input size for the frame (see
                :func:`sfc_plugin.utils.prepare_image`), on any device.
            mask: (H, W) integer ids for an annotated frame (required for the first frame).
            rgb: the (H, W, 3) uint8 frame at the masks' size; needed when the settings guide the upsampling.
        Returns:
            The (H, W) uint8 ids (the mask itself for an annotated frame) and, for a predicted frame, the
            (k, h, w) soft labels, as a :class:`HostFrame`.
        """
        feat = self._features(image)
        start = self.clock.mark()
        soft = self.loop.propagate(feat, mask)
        start = self.clock.add('propagate', start)
        if soft is None:
            return HostFrame(torch.from_numpy(np.asarray(mask, np.uint8)), None)
        guide = None
        if self.loop.codec.guided:
            if rgb is None:
                raise ValueError('the settings upsample the labels guided by the frame (guide_radius '
                                 f'{self.loop.codec.guide_radius}): step() needs the frame as rgb')
            guide = prepare_image(rgb, rgb.shape[:2]).to(self.backend.device, non_blocking=True)
        frame = HostFrame(self.loop.decode(soft, guide).to(torch.uint8), soft)
        self.clock.add('postprocess', start)
        return frame

    @torch.no_grad()
    def restore(self, image: Tensor, long_memory: bool, mask: Optional[np.ndarray] = None,
                labels: Optional[Tensor] = None) -> None:
        """Put a frame of an earlier run back into the context without predicting it (``--resume``).

        Args:
            image: as in :meth:`step`.
            long_memory: make it the long memory (as a keyframe), else append it to the short-term window (the
                long memory unchanged).
            mask: (H, W) ids of an annotated frame, or
            labels: (k, h, w) soft labels the earlier run predicted for it.
        """
        feat = self._features(image)
        start = self.clock.mark()
        self.loop.restore(feat, long_memory, mask, labels)
        self.clock.add('propagate', start)
