"""The context of the exported propagation step, kept on the device for a whole video.

``propagate.onnx`` / ``propagate.engine`` take the reference context layout: ``context_feats``
(m + 1, C, h, w) and ``context_labels`` (m + 1, K, h, w), index 0 the long memory, indices 1..m the
short-term window as real frames, with the copies of frame 0 at the start of a video materialised.
:class:`DenseContext` keeps those two buffers and updates them in place with the same bookkeeping as
:class:`~sfc_plugin.propagation.LabelPropagator` (:class:`~sfc_plugin.propagation.window.ContextWindow`):
a slot that holds no distinct frame holds a copy of the long-memory frame, so the copies need no writes.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from sfc_plugin.propagation.window import ContextWindow

# (query (C, h, w), context_feats (m + 1, C, h, w), context_labels (m + 1, K, h, w)) -> labels (K, h, w)
StepFunction = Callable[[Tensor, Tensor, Tensor], Tensor]


class DenseContext:
    """Streaming propagation through an exported step: :meth:`step` has the contract of
    ``LabelPropagator.step``.

    Videos with fewer label channels than the export's K are padded with zero channels, which stay zero
    (every prediction is a convex combination of stored labels); outputs have the video's channels.

    Args:
        run_step: runs the exported step on the buffers (see ``StepFunction``).
        context_len: m of the export.
        channels, num_labels, feat_size: C, K and (h, w) of the export.
        device: where the buffers live (that of the step's inputs).
        pad_with_first: must be True: the fixed-size step always takes m short-term entries, which only the
            padded window has from the first frame on.
    """

    def __init__(self, run_step: StepFunction, context_len: int, channels: int, num_labels: int,
                 feat_size: Tuple[int, int], device: torch.device, pad_with_first: bool = True) -> None:
        if not pad_with_first:
            raise ValueError('an exported propagation step takes exactly context_len short-term entries; a model '
                             'with pad_with_first=False has fewer in its first frames: run it with the torch backend')
        self.run_step = run_step
        self.window = ContextWindow(context_len, pad_with_first)
        self.feats = torch.zeros(context_len + 1, channels, *feat_size, device=device)
        self.labels = torch.zeros(context_len + 1, num_labels, *feat_size, device=device)
        self.num_classes = 0  # label channels of the current video

    @torch.no_grad()
    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Propagate to the next frame.

        Args:
            feat: (C, h, w) L2-normalised features of the frame.
            labels: (k, h, w) soft labels (k <= K) when the frame is annotated; the first call must have them.
        Returns:
            (k, h, w) soft labels: the given ones for an annotated frame, else the prediction.
        """
        self._check('feat', feat, self.feats.shape[1])
        if not self.window.started:
            if labels is None:
                raise ValueError('the first frame of a video must come with labels')
            self._check_labels(labels, first=True)
            self.feats[:] = feat  # the long memory and its m copies
            self.labels.zero_()
            self.labels[:, :self.num_classes] = labels
            self.window.start()
            return labels
        if labels is not None:
            self._check_labels(labels)
            self.window.materialise_copies()  # the free slots already hold copies of slot 0
            self._write(0, feat, labels)
            self._write(self.window.append(), feat, labels)
            return labels
        prediction = self.run_step(feat, self.feats, self.labels)  # (K, h, w)
        self._write(self.window.append(), feat, prediction[:self.num_classes])
        return prediction[:self.num_classes]

    @torch.no_grad()
    def append(self, feat: Tensor, labels: Tensor) -> None:
        """Append a frame whose labels are known (a prediction restored on resume) to the short-term window;
        the long memory is unchanged."""
        if not self.window.started:
            raise ValueError('append() needs a first frame: call step(feat, labels) first')
        self._check('feat', feat, self.feats.shape[1])
        self._check_labels(labels)
        self._write(self.window.append(), feat, labels)

    def _write(self, slot: int, feat: Tensor, labels: Tensor) -> None:
        self.feats[slot] = feat
        self.labels[slot, :self.num_classes] = labels

    def _check(self, name: str, tensor: Tensor, channels: int) -> None:
        expected = (channels,) + tuple(self.feats.shape[2:])
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != expected:
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise ValueError(f'{name} must be a {expected} tensor (the exported sizes), got {shape}')

    def _check_labels(self, labels: Tensor, first: bool = False) -> None:
        max_labels = self.labels.shape[1]
        if first:
            if not isinstance(labels, Tensor) or labels.dim() != 3 or not 1 <= labels.shape[0] <= max_labels:
                shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
                raise ValueError(f'labels must be (k, h, w) with 1 <= k <= {max_labels} (the exported number of '
                                 f'label channels), got {shape}')
            self.num_classes = labels.shape[0]
        self._check('labels', labels, self.num_classes)
