"""Nearest-neighbour feature matching on a rectified stereo pair with ground-truth disparity.

A quick, real-data check of a feature network's correspondence quality: a left pixel (x, y) with
disparity d matches the right pixel (x - d, y). Each left point's feature is matched to the most
similar (cosine) location of the whole right feature map, and PCK is the fraction of points
whose match lies within a threshold (in pixels) of the truth.
"""
from typing import Callable, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sfc_plugin.utils import image_tensor


def stereo_pck(backbone_fn: Callable[[torch.Tensor], torch.Tensor],
               left: np.ndarray,
               right: np.ndarray,
               disparity: np.ndarray,
               thresholds: Sequence[float] = (8, 16),
               grid_step: int = 8) -> Dict[float, float]:
    """PCK of nearest-neighbour matches from ``left`` to ``right``, per pixel threshold.

    Args:
        backbone_fn: maps (1, 3, H, W) float RGB in [0, 1] to a feature map (1, C, h, w) at any
            resolution (it normalises its input itself); called without gradients.
        left, right: (H, W, 3) uint8 RGB, the rectified pair.
        disparity: (H, W) ground-truth disparity of ``left``; non-finite or negative = unknown.
        thresholds: distances in pixels.
        grid_step: left query points are the pixels (x, y) with x, y multiples of ``grid_step``
            (offset by half a step), whose disparity is known and whose match lies in ``right``.

    Returns:
        {threshold: fraction of query points whose match is within ``threshold`` pixels}.

    A left point's feature is sampled bilinearly at its pixel centre (clamped at the border of
    the map); a right feature cell (i, j)
    of an (h, w) map stands for the pixel ((j + 0.5) * W / w - 0.5, (i + 0.5) * H / h - 0.5).
    """
    if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
        raise ValueError(f'left and right must be (H, W, 3) images of one size, got {left.shape} '
                         f'and {right.shape}')
    if disparity.shape != left.shape[:2]:
        raise ValueError(f'disparity must be (H, W) = {left.shape[:2]}, got {disparity.shape}')
    height, width = disparity.shape

    # Query points on a grid, with a known disparity and a target inside the right image.
    ys, xs = np.mgrid[grid_step // 2:height:grid_step, grid_step // 2:width:grid_step]
    xs, ys = xs.ravel(), ys.ravel()
    point_disparity = disparity[ys, xs].astype(np.float64)
    valid = np.isfinite(point_disparity) & (point_disparity >= 0) & (xs - point_disparity >= 0)
    if not valid.any():
        raise ValueError('no grid point has a known disparity with a target inside the right image')
    xs, ys, point_disparity = xs[valid], ys[valid], point_disparity[valid]
    target = np.stack([xs - point_disparity, ys], axis=1)  # (N, 2) x, y in the right image

    def features(image: np.ndarray) -> torch.Tensor:
        tensor = image_tensor(image)
        with torch.no_grad():
            return backbone_fn(tensor).float()

    left_features, right_features = features(left), F.normalize(features(right), dim=1)  # (1, C, h, w)
    # Pixel centres -> grid_sample's normalised coordinates (align_corners=False).
    grid = torch.from_numpy(np.stack([(xs + 0.5) / width * 2 - 1, (ys + 0.5) / height * 2 - 1], axis=1))
    query = F.grid_sample(left_features, grid.float().view(1, 1, -1, 2), mode='bilinear',
                          padding_mode='border', align_corners=False)[0, :, 0].T  # (N, C)
    query = F.normalize(query, dim=1)

    _, channels, map_height, map_width = right_features.shape
    best = (query @ right_features[0].reshape(channels, -1)).argmax(dim=1).numpy()  # (N,)
    predicted = np.stack([(best % map_width + 0.5) * width / map_width - 0.5,
                          (best // map_width + 0.5) * height / map_height - 0.5], axis=1)
    error = np.linalg.norm(predicted - target, axis=1)
    return {threshold: float((error <= threshold).mean()) for threshold in thresholds}
