"""The video loop, written once for evaluation, ``sfc-propagate`` and the exported step: an annotated frame's
annotation -> soft labels (the task's codec) -> the streaming propagator; a predicted frame's features ->
propagated soft labels -> the task's prediction (the codec again).

The propagator is any :class:`.streaming.Propagator`: the core's ``TiledPropagator`` (evaluation, the torch
backend) or ``ExportedStepPropagator``, the exported step over its dense context (onnxruntime, TensorRT).
"""
from typing import Any, Optional

import torch
from torch import Tensor

from .codecs import LabelCodec
from .streaming import Propagator


class VideoLabelLoop:
    """One video's propagation through ``propagator`` with the task's ``codec``; frames in order.

    The first frame must be annotated. A later annotated frame is a keyframe: its annotation replaces the
    long memory. An annotated frame's prediction is its annotation.
    """

    def __init__(self, propagator: Propagator, codec: LabelCodec) -> None:
        self.propagator = propagator
        self.codec = codec

    def labels(self, annotation: Any, feat: Tensor) -> Tensor:
        """An annotation's (K, h, w) soft labels for the (C, h, w) features ``feat``, on their device."""
        return self.codec.encode(annotation, tuple(feat.shape[-2:])).to(feat.device)

    @torch.no_grad()
    def propagate(self, feat: Tensor, annotation: Any = None) -> Optional[Tensor]:
        """Take the next frame's (C, h, w) features (and its annotation, if it has one); return its predicted
        (K, h, w) soft labels, or None for an annotated frame."""
        if annotation is not None:
            self.propagator.step(feat, self.labels(annotation, feat))
            return None
        return self.propagator.step(feat)

    def decode(self, soft: Tensor, image: Optional[Tensor] = None) -> Any:
        """A predicted frame's soft labels -> the task's prediction (see the codec; ``image``, the (3, H, W)
        frame, for a codec that upsamples guided by it)."""
        return self.codec.decode(soft, image)

    def step(self, feat: Tensor, annotation: Any = None, image: Optional[Tensor] = None) -> Any:
        """:meth:`propagate` then :meth:`decode`: the frame's prediction (its annotation, if it has one)."""
        soft = self.propagate(feat, annotation)
        return annotation if soft is None else self.decode(soft, image)

    @torch.no_grad()
    def restore(self, feat: Tensor, long_memory: bool, annotation: Any = None,
                labels: Optional[Tensor] = None) -> None:
        """Put a frame of an earlier run back into the context without predicting it (a resumed run).

        Args:
            feat: (C, h, w) features of the frame.
            long_memory: make it the long memory (as an annotated frame), else append it to the short-term
                window (the long memory unchanged).
            annotation: the frame's annotation, or
            labels: the (K, h, w) soft labels the earlier run predicted for it.
        """
        labels = self.labels(annotation, feat) if annotation is not None else labels.to(feat.device)
        if long_memory:
            self.propagator.step(feat, labels)
        else:
            self.propagator.append(feat, labels)
