"""Label maps <-> soft labels at feature resolution (docs/method.md section 3).

Frame 0's label values define the classes (background included). Its mask becomes a one-hot map at
image size, resized bilinearly (``align_corners=False``) to the feature size ``ceil(H/8) x ceil(W/8)``;
a predicted soft map is resized bilinearly back to the image size (optionally guided by the frame,
:mod:`.upsampling`) and its argmax mapped to the label values.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .upsampling import upsample_labels

ArrayLike = Union[Tensor, np.ndarray]


def feature_size(image_size: Tuple[int, int], stride: int = 8) -> Tuple[int, int]:
    """Feature-map size of a stride-``stride`` network: ``(ceil(H / stride), ceil(W / stride))``."""
    return math.ceil(image_size[0] / stride), math.ceil(image_size[1] / stride)


def network_input_size(frame_size: Tuple[int, int], min_side: Optional[int]) -> Tuple[int, int]:
    """(H, W) the network takes for frames of ``frame_size`` (H, W): the frame's own size, or, when
    its shorter side is below ``min_side``, the frame scaled up (aspect kept, rounded) so that the
    shorter side is ``min_side`` (a model's ``min_input_side``: evaluation, the runtime and exports alike)."""
    height, width = (int(v) for v in frame_size)
    if min_side is None or min(height, width) >= min_side:
        return height, width
    scale = min_side / min(height, width)
    return round(height * scale), round(width * scale)


def mask_to_soft_labels(ids: ArrayLike, label_values: Sequence[int], feat_size: Tuple[int, int]) -> Tensor:
    """(H, W) integer mask -> (K, h, w) float32 soft labels, channel k for ``label_values[k]``.

    Raises:
        ValueError: if the mask holds a value that is not in ``label_values``.
    """
    ids = torch.as_tensor(ids)
    if ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(f'ids must be an (H, W) integer mask, got {ids.dtype} of shape {tuple(ids.shape)}')
    values = torch.as_tensor(list(label_values), dtype=torch.long, device=ids.device)
    one_hot = ids.long()[None] == values[:, None, None]  # (K, H, W)
    known = one_hot.any(0)
    if not bool(known.all()):
        unknown = sorted(int(v) for v in torch.unique(ids[~known]))
        raise ValueError(f'mask holds label values {unknown} that are not in label_values {values.tolist()}')
    soft = F.interpolate(one_hot[None].float(), size=tuple(feat_size), mode='bilinear', align_corners=False)
    return soft[0]


def soft_labels_to_ids(soft: Tensor, image_size: Tuple[int, int], label_values: Sequence[int],
                       image: Optional[Tensor] = None, guide_radius: float = 0.0, guide_eps: float = 1e-4) -> Tensor:
    """(K, h, w) soft labels -> (H, W) int64 label values: bilinear upsampling (guided by the (3, H, W) frame
    ``image`` when ``guide_radius`` > 0, :func:`.upsampling.upsample_labels`), argmax."""
    if soft.dim() != 3 or soft.shape[0] != len(label_values):
        raise ValueError(f'soft must be ({len(label_values)}, h, w) for {len(label_values)} label values, '
                         f'got {tuple(soft.shape)}')
    upsampled = upsample_labels(soft, image_size, image, guide_radius, guide_eps)
    values = torch.as_tensor(list(label_values), dtype=torch.long, device=soft.device)
    return values[upsampled.argmax(0)]


DILUTED_PEAK = 0.5  # an object whose labels peak below this is fading out (leaving, hidden), not diluted


def lift_diluted_objects(soft: Tensor, max_gain: float) -> Tensor:
    """Counter the dilution of thin and small objects' propagated labels (``PropagationSettings.dilution_gain``).

    Each top-k blend mixes some background into an object only a cell or two wide, frame after frame, until
    its argmax falls to the background: its labels peak ever lower. Each object channel k >= 1 whose peak
    ``p_k = max(soft[k])`` is in ``[DILUTED_PEAK, 1)`` is scaled by ``min(1 / p_k, max_gain)``; then every cell is
    renormalised to sum 1. The background (channel 0), objects with a confident cell (peak 1) and objects
    fading out (peak below ``DILUTED_PEAK``) are unchanged, so an object that shrinks or leaves is not held.

    Args:
        soft: (K, h, w) propagated soft labels, channel 0 the background; cells sum to 1.
        max_gain: the largest scale of an object's labels in one frame (>= 1).
    Returns:
        (K, h, w) soft labels.
    """
    peak = soft.flatten(1).amax(1)  # (K,)
    gain = (1.0 / peak.clamp(min=1e-12)).clamp(1.0, max_gain)
    gain = torch.where(peak >= DILUTED_PEAK, gain, torch.ones_like(gain))
    gain[0] = 1.0
    scaled = soft * gain[:, None, None]
    return scaled / scaled.sum(0, keepdim=True).clamp(min=1e-12)
