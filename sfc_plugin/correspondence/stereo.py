"""A rectified stereo pair with ground-truth disparity as a pair-matching check of a feature network.

The pair is a pair sample whose keypoints come from the disparity: a left grid pixel (x, y) with
disparity d matches the right pixel (x - d, y). Its points are transferred with :class:`PairMatcher`'s
nearest neighbour (the highest cosine over the whole right feature map) and scored with
:func:`pck_hits`, at thresholds in pixels instead of fractions of a box. The feature maps span each
image exactly (:class:`FeatureMap`'s default geometry: a cell of an (h, w) map over an (H, W) image
is W / w by H / h pixels), so any callable that maps an image to a feature map can be measured.
"""
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from sfc_plugin.utils import image_tensor
from .matching import FeatureMap, PairMatcher
from .pck import pck_hits


def stereo_keypoints(disparity: np.ndarray, grid_step: int = 8) -> Tuple[np.ndarray, np.ndarray]:
    """The pair's keypoints: (N, 2) left and (N, 2) right x, y pixels.

    The left points are the pixels whose x and y are multiples of ``grid_step`` offset by half a step,
    whose disparity is known (finite, >= 0) and whose match (x - d, y) lies inside the right image.
    """
    height, width = disparity.shape
    ys, xs = np.mgrid[grid_step // 2:height:grid_step, grid_step // 2:width:grid_step]
    xs, ys = xs.ravel(), ys.ravel()
    point_disparity = disparity[ys, xs].astype(np.float64)
    valid = np.isfinite(point_disparity) & (point_disparity >= 0) & (xs - point_disparity >= 0)
    if not valid.any():
        raise ValueError('no grid point has a known disparity with a target inside the right image')
    xs, ys, point_disparity = xs[valid], ys[valid], point_disparity[valid]
    left = np.stack([xs, ys], axis=1).astype(np.float64)
    return left, np.stack([xs - point_disparity, ys], axis=1)


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
        grid_step: spacing of the left query points (:func:`stereo_keypoints`).

    Returns:
        {threshold: fraction of query points whose match is within ``threshold`` pixels}.
    """
    if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
        raise ValueError(f'left and right must be (H, W, 3) images of one size, got {left.shape} '
                         f'and {right.shape}')
    if disparity.shape != left.shape[:2]:
        raise ValueError(f'disparity must be (H, W) = {left.shape[:2]}, got {disparity.shape}')
    left_points, right_points = stereo_keypoints(disparity, grid_step)

    def features(image: np.ndarray) -> FeatureMap:
        with torch.no_grad():
            feature_map = backbone_fn(image_tensor(image)).float()
        return FeatureMap(F.normalize(feature_map, dim=1)[0], image.shape[:2])

    predicted = PairMatcher('nn')(features(left), features(right), left_points).points
    # A reference size of 1 pixel: the thresholds are distances in pixels.
    hits = pck_hits(predicted, right_points, np.ones(len(left_points), bool), 1.0, thresholds)
    return {threshold: float(hit.mean()) for threshold, hit in zip(thresholds, hits)}
