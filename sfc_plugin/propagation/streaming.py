"""Streaming label propagation: one frame of features in, its soft labels out (Cutie-like).

The first annotated frame becomes the long memory and the short-term window starts as ``context_len`` copies
of it (``pad_with_first``, the reference's front padding) or as that one frame. Every predicted frame is
appended to the window (oldest dropped, copies of the first frame first). A later frame given with labels (a
re-annotated keyframe) replaces the long memory and is appended like any frame; a frame whose labels are
known (a prediction restored by a resumed run) can be appended without predicting it.

:class:`StreamingPropagator` is that state machine, written once; which frames the window holds is tracked by
:class:`.window.ContextWindow`. It runs over one of two context stores (:class:`ContextStore`):

- :class:`TiledContext`: the core's tiled ring memory (:mod:`.memory`), predicted with :func:`.step.predict_tiles`
  (``TiledPropagator``, used by evaluation and the runtime's torch backend);
- :class:`DenseContext`: the reference layout that ``propagate.onnx`` / ``propagate.engine`` take
  (``context_feats`` (m + 1, C, h, w), ``context_labels`` (m + 1, K, h, w), index 0 the long memory), predicted by
  the exported step (the runtime's onnxruntime and TensorRT backends).
"""
from collections import Counter
from typing import Callable, List, Optional, Protocol, Tuple

import torch
from torch import Tensor

from .geometry import TileGeometry
from .labels import lift_diluted_objects
from .memory import ContextMemory, one_hot_argmax
from .settings import PropagationSettings, resolve_select_dtype
from .step import batch_tiles, predict_tiles
from .window import ContextWindow

# (query (C, h, w), context_feats (m + 1, C, h, w), context_labels (m + 1, K, h, w)) -> labels (K, h, w)
StepFunction = Callable[[Tensor, Tensor, Tensor], Tensor]


class Propagator(Protocol):
    """One video's streaming propagation, as every backend's ``new_propagator()`` returns it."""

    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """(C, h, w) features (and (K, h, w) labels if annotated) -> the frame's (K, h, w) soft labels."""

    def append(self, feat: Tensor, labels: Tensor) -> None:
        """Append a frame whose labels are known to the short-term window."""


class ContextStore(Protocol):
    """Where a :class:`StreamingPropagator` keeps the context: slot 0 is the long memory, slots 1..m the
    short-term frames (a slot holding no distinct frame holds nothing the step reads, or a copy of slot 0)."""

    def check_feat(self, feat: Tensor) -> Tensor:
        """Validate a frame's features (ValueError naming what is wrong); return them as the store takes them."""

    def check_labels(self, labels: Tensor) -> Tensor:
        """Validate the labels of a frame after the first one; return them as the store takes them."""

    def start(self, feat: Tensor, labels: Tensor) -> None:
        """A video's first frame: validate its labels, (re)allocate, write it to slot 0."""

    def write(self, slot: int, feat: Tensor, labels: Tensor) -> None:
        """Store a frame's features and labels in ``slot``."""

    def copy_long_memory(self, slots: List[int]) -> None:
        """Make ``slots`` hold the long-memory frame (before a keyframe replaces it)."""

    def predict(self, feat: Tensor, window: ContextWindow) -> Tensor:
        """Soft labels of a frame from the context the window describes."""


class StreamingPropagator:
    """The streaming state machine (see the module docstring) over a :class:`ContextStore`; one per video.

    Args:
        store: the context's storage and its prediction.
        context_len: m, entries of the short-term window.
        pad_with_first: start the window with m copies of the first frame.
        dilution_gain: the ``PropagationSettings.dilution_gain`` applied to each prediction before it is stored
            and returned (1.0: off).
    """

    def __init__(self, store: ContextStore, context_len: int, pad_with_first: bool = True,
                 dilution_gain: float = 1.0) -> None:
        self.store = store
        self.window = ContextWindow(context_len, pad_with_first)
        self.dilution_gain = dilution_gain

    @torch.no_grad()
    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Propagate to the next frame.

        Args:
            feat: (C, h, w) L2-normalised features of the frame.
            labels: (K, h, w) soft labels when the frame is annotated; the first call must have them.
        Returns:
            (K, h, w) soft labels: the given ones for an annotated frame, else the prediction.
        """
        feat = self.store.check_feat(feat)
        if not self.window.started:
            if labels is None:
                raise ValueError('the first frame of a video must come with labels')
            self.store.start(feat, labels)
            self.window.start()
            return labels
        if labels is not None:
            stored = self.store.check_labels(labels)
            self.store.copy_long_memory(self.window.materialise_copies())
            self.store.write(0, feat, stored)
            self.store.write(self.window.append(), feat, stored)
            return labels
        prediction = self.store.predict(feat, self.window)
        if self.dilution_gain > 1:
            prediction = lift_diluted_objects(prediction, self.dilution_gain)
        self.store.write(self.window.append(), feat, prediction)
        return prediction

    @torch.no_grad()
    def append(self, feat: Tensor, labels: Tensor) -> None:
        """Append a frame whose soft labels are known (e.g. a prediction restored by a resumed run) to the
        short-term window, as :meth:`step` appends a prediction; the long memory is unchanged."""
        if not self.window.started:
            raise ValueError('append() needs a first frame: call step(feat, labels) first')
        feat = self.store.check_feat(feat)
        self.store.write(self.window.append(), feat, self.store.check_labels(labels))


def _shape(tensor: object) -> object:
    return tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__


class TiledContext:
    """The core's tiled context: memory allocated once per video, for ``context_len`` frames, at the first
    frame's size and device.

    Attributes:
        stats: counts of the two-stage path: queries, selected (first try), reselected (8x the
            candidates), recomputed (exact fallback).
    """

    def __init__(self, settings: PropagationSettings) -> None:
        self.settings = settings
        self.stats = Counter()
        self.geometry: Optional[TileGeometry] = None
        self.memory: Optional[ContextMemory] = None

    def check_feat(self, feat: Tensor) -> Tensor:
        if not isinstance(feat, Tensor) or feat.dim() != 3 or not feat.is_floating_point():
            raise ValueError(f'feat must be a floating (C, h, w) tensor, got {_shape(feat)}')
        if self.memory is None:
            return feat.float()
        g = self.geometry
        if tuple(feat.shape) != (self.memory.ring.shape[-1], g.height, g.width):
            raise ValueError(f'feat of shape {tuple(feat.shape)} differs from the first frame\'s '
                             f'({self.memory.ring.shape[-1]}, {g.height}, {g.width})')
        return feat.to(g.device, torch.float32)

    def check_labels(self, labels: Tensor) -> Tensor:
        g = self.geometry
        expected = (self.memory.ring_labels.shape[-1], g.height, g.width)
        if not isinstance(labels, Tensor) or tuple(labels.shape) != expected:
            raise ValueError(f'labels must be a {expected} tensor (the K label channels of the first frame), got '
                             f'{_shape(labels)}')
        return labels.to(g.device, torch.float32)

    def start(self, feat: Tensor, labels: Tensor) -> None:
        if not isinstance(labels, Tensor) or labels.dim() != 3 or tuple(labels.shape[1:]) != tuple(feat.shape[1:]):
            raise ValueError(f'labels must be a (K, {feat.shape[1]}, {feat.shape[2]}) tensor, got {_shape(labels)}')
        s = self.settings
        self.geometry = TileGeometry(feat.shape[1], feat.shape[2], s.radius, s.tile_size, feat.device,
                                     batch_tiles(s, feat.device))
        self.memory = ContextMemory.allocate(self.geometry, 1 + s.context_len, feat.shape[0], labels.shape[0],
                                             resolve_select_dtype(s.select_dtype, feat.device))
        self.write(0, feat, labels.to(feat.device, torch.float32))

    def write(self, slot: int, feat: Tensor, labels: Tensor) -> None:
        label_tiles = self.geometry.to_tiles(labels)
        if self.settings.hard_labels:
            label_tiles = one_hot_argmax(label_tiles)
        self.memory.write(slot, self.geometry.to_tiles(feat), label_tiles)

    def copy_long_memory(self, slots: List[int]) -> None:
        for slot in slots:
            self.memory.copy_slot(0, slot)

    def predict(self, feat: Tensor, window: ContextWindow) -> Tensor:
        # The distinct short-term frames are slots 1 .. len(window.slots).
        tiles = predict_tiles(self.geometry.to_tiles(feat), self.memory, self.settings, window.copies,
                              1 + len(window.slots), self.stats)
        return self.geometry.from_tiles(tiles)

    def nbytes(self) -> int:
        """Bytes of the tensors held between steps."""
        return 0 if self.memory is None else self.memory.nbytes() + self.geometry.nbytes()


class TiledPropagator(StreamingPropagator):
    """Streaming label propagation with the core's tiled memory (see the module docstring).

    Args:
        settings: every propagation setting (:class:`PropagationSettings`).
    """

    def __init__(self, settings: Optional[PropagationSettings] = None) -> None:
        self.settings = settings if settings is not None else PropagationSettings()
        super().__init__(TiledContext(self.settings), self.settings.context_len, self.settings.pad_with_first,
                         self.settings.dilution_gain)

    @property
    def stats(self) -> Counter:
        """Counts of the two-stage path (see :class:`TiledContext`)."""
        return self.store.stats

    def memory_bytes(self) -> int:
        """Bytes of the tensors the propagator holds between steps."""
        return self.store.nbytes()


class DenseContext:
    """The context in the exported step's layout, kept on the device for a whole video and updated in place.

    A slot that holds no distinct frame holds a copy of the long-memory frame, so the window's copies need no
    writes. Videos with fewer label channels than the export's K are padded with zero channels, which stay
    zero (every prediction is a convex combination of stored labels); outputs have the video's channels.

    Args:
        run_step: runs the exported step on the buffers (see ``StepFunction``).
        context_len: m of the export.
        channels, num_labels, feat_size: C, K and (h, w) of the export.
        device: where the buffers live (that of the step's inputs).
    """

    def __init__(self, run_step: StepFunction, context_len: int, channels: int, num_labels: int,
                 feat_size: Tuple[int, int], device: torch.device) -> None:
        self.run_step = run_step
        self.feats = torch.zeros(context_len + 1, channels, *feat_size, device=device)
        self.labels = torch.zeros(context_len + 1, num_labels, *feat_size, device=device)
        self.num_labels = 0  # label channels of the current video

    def check_feat(self, feat: Tensor) -> Tensor:
        self._check('feat', feat, self.feats.shape[1])
        return feat

    def check_labels(self, labels: Tensor) -> Tensor:
        self._check('labels', labels, self.num_labels)
        return labels

    def start(self, feat: Tensor, labels: Tensor) -> None:
        max_labels = self.labels.shape[1]
        if not isinstance(labels, Tensor) or labels.dim() != 3 or not 1 <= labels.shape[0] <= max_labels:
            raise ValueError(f'labels must be (k, h, w) with 1 <= k <= {max_labels} (the exported number of '
                             f'label channels), got {_shape(labels)}')
        self.num_labels = labels.shape[0]
        self._check('labels', labels, self.num_labels)
        self.feats[:] = feat  # the long memory and its m copies
        self.labels.zero_()
        self.labels[:, :self.num_labels] = labels

    def write(self, slot: int, feat: Tensor, labels: Tensor) -> None:
        self.feats[slot] = feat
        self.labels[slot, :self.num_labels] = labels

    def copy_long_memory(self, slots: List[int]) -> None:
        """Nothing to copy: the free slots already hold the long-memory frame."""

    def predict(self, feat: Tensor, window: ContextWindow) -> Tensor:
        return self.run_step(feat, self.feats, self.labels)[:self.num_labels]  # (k, h, w)

    def _check(self, name: str, tensor: Tensor, channels: int) -> None:
        expected = (channels,) + tuple(self.feats.shape[2:])
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != expected:
            raise ValueError(f'{name} must be a {expected} tensor (the exported sizes), got {_shape(tensor)}')


class ExportedStepPropagator(StreamingPropagator):
    """Streaming label propagation around an exported step (``propagate.onnx`` / ``propagate.engine``), with the
    dense context it takes (:class:`DenseContext`).

    The fixed-size step always takes ``context_len`` short-term entries (``settings.check_fixed_context``).

    Args:
        run_step: runs the exported step on the buffers (see ``StepFunction``).
        settings: the export's propagation settings.
        channels, num_labels, feat_size: C, K and (h, w) of the export.
        device: where the buffers live.
    """

    def __init__(self, run_step: StepFunction, settings: PropagationSettings, channels: int, num_labels: int,
                 feat_size: Tuple[int, int], device: torch.device) -> None:
        settings.check_fixed_context('the exported step')
        self.settings = settings
        super().__init__(DenseContext(run_step, settings.context_len, channels, num_labels, feat_size, device),
                         settings.context_len, settings.pad_with_first, settings.dilution_gain)
