"""Soft labels at feature resolution -> the frame's size: bilinear (the reference) or guided by the frame.

The stride-8 labels blur every object edge over a cell (8 frame pixels at 480p) and thin parts narrower than a
cell survive only as a faint ridge. The guided filter (He et al., "Guided Image Filtering", ECCV 2010, the
colour version; :func:`guided_coefficients`) fits each label channel, in every window, as a linear function of
the frame's RGB, so the upsampled labels change where the image changes: edges snap to the frame's colour
edges. Only the decoded masks change; the soft labels the propagation stores stay the ones it predicted.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2r + 1) x (2r + 1) window around each pixel, clipped at the borders: (N, C, H, W)."""
    size = 2 * radius + 1
    x = F.avg_pool2d(x, (size, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, size), stride=1, padding=(0, radius), count_include_pad=False)


def _inverse_3x3(m: Tensor) -> Tensor:
    """Inverse of symmetric 3 x 3 matrices stored as (..., 3, 3, H, W), by the adjugate."""
    a, b, c = m[..., 0, 0, :, :], m[..., 0, 1, :, :], m[..., 0, 2, :, :]
    e, f, i = m[..., 1, 1, :, :], m[..., 1, 2, :, :], m[..., 2, 2, :, :]
    co_a, co_b, co_c = e * i - f * f, c * f - b * i, b * f - c * e
    co_e, co_f, co_i = a * i - c * c, b * c - a * f, a * e - b * b
    det = a * co_a + b * co_b + c * co_c
    rows = [[co_a, co_b, co_c], [co_b, co_e, co_f], [co_c, co_f, co_i]]
    return torch.stack([torch.stack(row, -3) for row in rows], -4) / det[..., None, None, :, :]


def guided_coefficients(image: Tensor, src: Tensor, radius: int, eps: float) -> Tuple[Tensor, Tensor]:
    """The guided filter's per-pixel linear model of ``src`` (N, K, H, W) in ``image`` (N, 3, H, W): (N, 3, K, H, W)
    slopes and (N, K, H, W) offsets, each the mean over the windows covering the pixel of that window's ridge
    regression (regulariser ``eps``) of ``src`` on its RGB."""
    mean_i, mean_p = box_mean(image, radius), box_mean(src, radius)  # (N, 3, H, W), (N, K, H, W)
    products = image[:, :, None] * src[:, None]  # (N, 3, K, H, W)
    cov_ip = box_mean(products.flatten(1, 2), radius).view_as(products) - mean_i[:, :, None] * mean_p[:, None]
    outer = image[:, :, None] * image[:, None]  # (N, 3, 3, H, W)
    var_i = box_mean(outer.flatten(1, 2), radius).view_as(outer) - mean_i[:, :, None] * mean_i[:, None]
    var_i = var_i + eps * torch.eye(3, device=image.device)[:, :, None, None]
    a = (_inverse_3x3(var_i)[:, :, :, None] * cov_ip[:, None]).sum(2)  # (N, 3, K, H, W)
    b = mean_p - (a * mean_i[:, :, None]).sum(1)  # (N, K, H, W)
    return box_mean(a.flatten(1, 2), radius).view_as(a), box_mean(b, radius)


def upsample_labels(soft: Tensor, frame_size: Tuple[int, int], image: Optional[Tensor] = None,
                    guide_radius: float = 0.0, guide_eps: float = 1e-4) -> Tensor:
    """(K, h, w) soft labels -> (K, H, W) at ``frame_size``: bilinear, or, with ``guide_radius`` > 0 (feature
    cells), guided by ``image``, the (3, H, W) frame as RGB in [0, 1].

    Guided, it is the fast guided filter (He and Sun, 2015): the linear models are fitted on a grid twice as fine
    as the labels' (the frame area-averaged to it, the labels bilinear, windows of ``2 * guide_radius`` grid
    cells), upsampled bilinearly and applied to every frame pixel's colour, so the frame's size costs only
    that last step.
    """
    if guide_radius <= 0:
        return F.interpolate(soft[None].float(), size=tuple(frame_size), mode='bilinear', align_corners=False)[0]
    if image is None or tuple(image.shape) != (3, *frame_size):
        raise ValueError(f'guided upsampling needs the frame as (3, {frame_size[0]}, {frame_size[1]}) RGB, got '
                         f'{None if image is None else tuple(image.shape)}')
    grid = fit_grid(tuple(soft.shape[-2:]), frame_size)
    frame = image[None].to(soft.device, torch.float32)
    labels = F.interpolate(soft[None].float(), size=grid, mode='bilinear', align_corners=False)
    slopes, offsets = guided_coefficients(F.adaptive_avg_pool2d(frame, grid), labels,
                                          max(1, round(2 * guide_radius)), guide_eps)
    slopes = F.interpolate(slopes.flatten(1, 2), size=tuple(frame_size), mode='bilinear', align_corners=False)
    offsets = F.interpolate(offsets, size=tuple(frame_size), mode='bilinear', align_corners=False)
    return ((slopes.view(1, 3, -1, *frame_size) * frame[:, :, None]).sum(1) + offsets)[0]


def fit_grid(feat_size: Tuple[int, int], frame_size: Tuple[int, int]) -> Tuple[int, int]:
    """Where guided upsampling fits its linear models: twice the labels' resolution, at most the frame's."""
    return min(2 * feat_size[0], frame_size[0]), min(2 * feat_size[1], frame_size[1])
