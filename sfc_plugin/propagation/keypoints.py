"""JHMDB pose propagation: joints as label maps and back, as the UVC / CRW reference code.

Conventions (the reference's, so that PCK matches the published numbers):
- Coordinates are (x, y) pixel indices, 0-based, with no half-pixel offset: original pixel x maps
  to input pixel ``x * input_w / ori_w`` and to feature cell ``x * input_w / ori_w / stride``;
  a feature cell index maps back with the inverse scale.
- A label map has J + 1 channels: channel 0 is the background (1 where every joint map is 0),
  channel j + 1 the Gaussian of joint j.
"""
import math
from typing import Sequence, Tuple

import numpy as np


def resize_keypoints(keypoints: np.ndarray, from_size: Sequence[int], to_size: Sequence[int]) -> np.ndarray:
    """Scale (..., 2) x, y from an image of ``from_size`` (H, W) to one of ``to_size`` (H, W)."""
    scale = np.array([to_size[1] / from_size[1], to_size[0] / from_size[0]])
    return np.asarray(keypoints, dtype=np.float64) * scale


def keypoints_to_heatmaps(keypoints: np.ndarray,
                          feat_size: Tuple[int, int],
                          stride: float = 8,
                          sigma: float = 0.5) -> np.ndarray:
    """Label maps (J + 1, h, w) float32 of joints (J, 2) x, y given in input-image pixels.

    Each joint is drawn as the reference (pose-hg-train ``draw_labelmap``) does: a window of
    ``6 sigma + 1`` cells starting at cell ``int(p - 3 sigma)`` holds
    ``exp(-d^2 / (2 sigma^2))`` around the window's centre cell ``int(p - 3 sigma) + (6 sigma + 1) // 2``
    (for p >= 3 sigma that is round(p); below, ``int`` truncating towards 0 shifts it by up to
    one cell, as in the reference), clipped to the map; a joint whose window lies entirely outside
    the map leaves its channel empty. Channel 0 is the background.
    """
    height, width = feat_size
    cells = np.asarray(keypoints, dtype=np.float64) / stride  # (J, 2) in feature cells
    size = 6 * sigma + 1
    offsets = np.arange(math.ceil(size)) - size // 2  # window cells relative to its centre cell
    gaussian = np.exp(-(offsets[:, None]**2 + offsets[None, :]**2) / (2 * sigma**2))
    heatmaps = np.zeros((len(cells) + 1, height, width), np.float32)
    for joint, (x, y) in enumerate(cells):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        left, top = int(x - 3 * sigma), int(y - 3 * sigma)  # int() truncates towards 0, as the reference
        right, bottom = int(x + 3 * sigma + 1), int(y + 3 * sigma + 1)
        x0, x1 = max(left, 0), min(right, width)
        y0, y1 = max(top, 0), min(bottom, height)
        if x0 >= x1 or y0 >= y1:  # the window misses the map
            continue
        heatmaps[joint + 1, y0:y1, x0:x1] = gaussian[y0 - top:y1 - top, x0 - left:x1 - left]
    heatmaps[0] = (heatmaps[1:].sum(axis=0) == 0)
    return heatmaps


def heatmaps_to_keypoints(heatmaps: np.ndarray, topk: int = 3) -> np.ndarray:
    """Joint positions (J, 2) x, y in feature cells from propagated label maps (J + 1, h, w).

    Per joint (channels 1..J; channel 0, the background, is ignored): the value-weighted mean of
    the cell indices of its ``topk`` largest cells. A joint whose map is all zero gets NaN
    (the reference writes -1 there; PCK skips it).
    """
    joint_maps = np.asarray(heatmaps, dtype=np.float64)[1:]
    num_joints, height, width = joint_maps.shape
    flat = joint_maps.reshape(num_joints, height * width)
    topk = min(topk, height * width)
    top_indices = np.argsort(-flat, axis=1, kind='stable')[:, :topk]  # (J, k)
    top_values = np.take_along_axis(flat, top_indices, axis=1)
    coords = np.full((num_joints, 2), np.nan)
    found = flat.sum(axis=1) != 0
    weights = top_values[found] / top_values[found].sum(axis=1, keepdims=True)
    coords[found, 0] = (weights * (top_indices[found] % width)).sum(axis=1)
    coords[found, 1] = (weights * (top_indices[found] // width)).sum(axis=1)
    return coords


def cells_to_image(coords: np.ndarray, stride: float, input_size: Sequence[int],
                   ori_shape: Sequence[int]) -> np.ndarray:
    """Map (..., 2) x, y from feature cells of the ``input_size`` (H, W) network input to
    original-image pixels of ``ori_shape`` (H, W): ``x * stride * ori_w / input_w``."""
    return resize_keypoints(np.asarray(coords, dtype=np.float64) * stride, input_size, ori_shape)
