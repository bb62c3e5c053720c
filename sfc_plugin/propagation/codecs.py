"""Per-task label codecs: a frame's annotation -> (K, h, w) soft labels at feature resolution (``encode``), and
a predicted frame's soft labels -> the task's prediction at the frame's size (``decode``).

- :class:`MaskCodec`: object or part ids (DAVIS masks, VIP parts, ``sfc-propagate``'s masks).
- :class:`KeypointCodec`: JHMDB joints as Gaussian label maps (:mod:`.keypoints`).

The 255 rule, decided here once. DAVIS annotations mark object borders and ignored regions with the void id 255:
a benchmark's first mask (:meth:`MaskCodec.for_benchmark`) treats 255 as unlabelled (not a class; background in
the soft labels; kept in the annotated frame's own prediction, which the metrics skip). A user's masks
(:meth:`MaskCodec.for_user_masks`) have no void: every id is an object, so a binary 0/255 mask tracks object 255.
"""
from typing import Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from sfc_plugin.structures import VOID_ID
from .keypoints import cells_to_image, heatmaps_to_keypoints, keypoints_to_heatmaps, resize_keypoints
from .labels import mask_to_soft_labels, soft_labels_to_ids
from .settings import PropagationSettings


class LabelCodec(Protocol):
    """A task's annotation <-> soft labels."""

    def encode(self, annotation, feat_size: Tuple[int, int]) -> Tensor:
        """An annotated frame's (K, h, w) float32 soft labels for a ``feat_size`` (h, w) feature map."""

    def decode(self, soft: Tensor, image: Optional[Tensor] = None):
        """A predicted frame's (K, h, w) soft labels (and the (3, H, W) frame, for a codec that uses it) -> the
        task's prediction at the frame's size."""


def label_values_of(masks: Iterable[np.ndarray], void_id: Optional[int] = None) -> List[int]:
    """The classes of a video: sorted ids present in any of its masks, ``void_id`` left out, background 0 always
    included; channel k of the soft labels is the k-th value."""
    values = set()
    for ids in masks:
        values.update(int(v) for v in np.unique(ids))
    return sorted((values - {void_id}) | {0})


class MaskCodec:
    """Id masks (H, W) <-> soft labels (K, h, w), channel k for ``label_values[k]``.

    Args:
        label_values: the classes, background 0 included.
        frame_size: (H, W) of the frames; predictions are upsampled to it (bilinear, or guided by the frame:
            ``guide_radius`` > 0, see :func:`.upsampling.upsample_labels`), argmax.
        void_id: an id that marks unlabelled pixels rather than an object (counted as background when encoding);
            None: every id is a class. Use :meth:`for_benchmark` or :meth:`for_user_masks`.
        guide_radius, guide_eps: ``PropagationSettings``' guided upsampling (:meth:`with_guide`).
    """

    def __init__(self, label_values: Sequence[int], frame_size: Tuple[int, int], void_id: Optional[int] = None,
                 guide_radius: float = 0.0, guide_eps: float = 1e-4) -> None:
        self.label_values = [int(v) for v in label_values]
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.void_id = void_id
        self.guide_radius, self.guide_eps = float(guide_radius), float(guide_eps)

    def with_guide(self, settings: PropagationSettings) -> 'MaskCodec':
        """This codec decoding with ``settings``' guided upsampling (``guide_radius``, ``guide_eps``)."""
        return MaskCodec(self.label_values, self.frame_size, self.void_id, settings.guide_radius, settings.guide_eps)

    @property
    def guided(self) -> bool:
        """Whether :meth:`decode` needs the frame."""
        return self.guide_radius > 0

    @classmethod
    def for_benchmark(cls, first_ids: np.ndarray) -> 'MaskCodec':
        """A benchmark video (DAVIS, VIP, the project's VOS benchmarks) from its first annotation: 255 is void."""
        return cls(label_values_of([first_ids], VOID_ID), first_ids.shape[:2], VOID_ID)

    @classmethod
    def for_user_masks(cls, masks: Sequence[np.ndarray]) -> 'MaskCodec':
        """A user's video (``sfc-propagate``) from all its annotated masks (frame 0 first): every id is an object."""
        return cls(label_values_of(masks), masks[0].shape[:2])

    def encode(self, annotation: np.ndarray, feat_size: Tuple[int, int]) -> Tensor:
        """(H, W) integer ids -> (K, h, w) float32 soft labels (ValueError on an id that is not a class)."""
        ids = torch.from_numpy(np.asarray(annotation))
        if self.void_id is not None:
            ids = torch.where(ids == self.void_id, torch.zeros_like(ids), ids)
        return mask_to_soft_labels(ids, self.label_values, feat_size)

    def decode(self, soft: Tensor, image: Optional[Tensor] = None) -> Tensor:
        """(K, h, w) soft labels -> (H, W) int64 ids on the labels' device; ``image``: the (3, H, W) frame as RGB
        in [0, 1], needed when :attr:`guided`."""
        return soft_labels_to_ids(soft, self.frame_size, self.label_values, image, self.guide_radius,
                                  self.guide_eps)


class KeypointCodec:
    """JHMDB joints (J, 2) x, y in frame pixels <-> (J + 1, h, w) Gaussian label maps (channel 0 background).

    Args:
        frame_size: (H, W) of the original frames (keypoints are given and predicted in their pixels).
        network_size: (H, W) the frames are resized to for the network.
        stride: feature stride of the network.
        sigma: std of each joint's Gaussian, in feature cells.
        topk: cells averaged to decode a joint.
    """

    def __init__(self, frame_size: Tuple[int, int], network_size: Tuple[int, int], stride: int,
                 sigma: float = 0.5, topk: int = 3) -> None:
        self.frame_size = tuple(frame_size)
        self.network_size = tuple(network_size)
        self.stride = stride
        self.sigma = sigma
        self.topk = topk

    def encode(self, annotation: np.ndarray, feat_size: Tuple[int, int]) -> Tensor:
        """(J, 2) joints in frame pixels -> (J + 1, h, w) float32 label maps."""
        keypoints = resize_keypoints(annotation, self.frame_size, self.network_size)
        return torch.from_numpy(keypoints_to_heatmaps(keypoints, feat_size, self.stride, self.sigma))

    def decode(self, soft: Tensor, image: Optional[Tensor] = None) -> np.ndarray:
        """(J + 1, h, w) label maps -> (J, 2) float64 joints in frame pixels (NaN for a joint with an empty map);
        the frame ``image`` is not used."""
        cells = heatmaps_to_keypoints(soft.cpu().numpy(), topk=self.topk)
        return cells_to_image(cells, self.stride, self.network_size, self.frame_size)
