"""SemiMatch's pseudo-labels and unsupervised loss (Kim et al., CVPR 2022), on CATs-style correlations.

Views of a pair (source x_s, target x_t): the weak target (photometric weak list; the supervised
loss), the additional weak target x_a (no change; the pseudo-labels) and the strong target
(photometric strong list, KeyOut / KeyMix, then the geometric warp W: affine + thin-plate spline).
Correlations are (B, N_t, N_s): target cells (the query) against source cells (the reference).

Pseudo-labels (:func:`pseudo_labels`), from R_a = R(x_a, x_s) without gradient:

    R~ = W(R_a)                             (warped over target positions, nearest; zero outside)
    P(s | t) = softmax_s((R~ - max) / tau_c),  y(t) = argmax_s P,  conf(t) = max_s P
    M(t) = [conf >= p_cut] & [y(t) in the source box] & W(target box)(t) & W(fb mask of R_a)(t) & inside(t)

The forward-backward mask (:func:`forward_backward_mask`, UnFlow's test on argmax flows in cells)
keeps a target cell when ``|F + F_bw|^2 <= alpha1 (|F|^2 + |F_bw|^2) + alpha2``, F_bw being the
source-to-target flow at the matched source cell. The unsupervised loss (:func:`unsupervised_loss`)
on R_st = R(strong target, x_s):

    u(t) = exp(-lambda_H H(P(. | t)))
    L_unsup = mean over t in M of u(t) CE(R_st(t, .) / tau_ct, y(t))

and :func:`balance` is the official code's dynamic weighting ``L_unsup * L_sup / L_unsup`` (both
detached). Differences from the official code, each a fix of something it leaves inconsistent: the
boxes are moved with the random crop (the code rescales them from the original image only), and the
inside-the-warp test is explicit (the code relies on a warped zero row having low confidence).
"""
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .cats import cell_positions

__all__ = ['PseudoLabels', 'forward_backward_mask', 'cells_in_boxes', 'warp_cells', 'pseudo_labels',
           'entropy_weight', 'unsupervised_loss', 'balance']


class PseudoLabels(NamedTuple):
    """Per strong-target cell: the source cell index (B, N_t), its confidence (B, N_t), the entropy
    weight u (B, N_t) and the mask M (B, N_t) of the cells that are trained."""
    source_cell: Tensor
    confidence: Tensor
    weight: Tensor
    mask: Tensor


def forward_backward_mask(correlation: Tensor, grid: int, alpha1: float = 0.1, alpha2: float = 0.5) -> Tensor:
    """(B, N_t, N_s) -> (B, N_t) bool: target cells whose argmax flow is forward-backward consistent."""
    positions = cell_positions(grid, correlation.device)  # (N, 2)
    to_source = correlation.argmax(dim=2)  # (B, N_t)
    to_target = correlation.argmax(dim=1)  # (B, N_s)
    forward = positions[to_source] - positions  # (B, N_t, 2)
    backward_at_match = positions[torch.gather(to_target, 1, to_source)] - positions[to_source]  # (B, N_t, 2)
    gap = (forward + backward_at_match).pow(2).sum(-1)
    bound = alpha1 * (forward.pow(2).sum(-1) + backward_at_match.pow(2).sum(-1)) + alpha2
    return gap <= bound


def cells_in_boxes(boxes: Tensor, image_size: int, grid: int) -> Tensor:
    """(B, 4) x1, y1, x2, y2 pixels of an S x S image -> (B, N) bool: cells whose pixel lies in the box."""
    centres = (cell_positions(grid, boxes.device) + 0.5) * (image_size / grid) - 0.5  # (N, 2)
    x, y = centres[:, 0][None], centres[:, 1][None]
    return ((x >= boxes[:, 0:1]) & (x <= boxes[:, 2:3]) & (y >= boxes[:, 1:2]) & (y <= boxes[:, 3:4]))


def warp_cells(values: Tensor, warp, grid: int) -> Tensor:
    """Apply ``warp`` (an ``AffineTPSWarp`` of the target image) to per-target-cell values:
    (B, N_t, ...) -> (B, N_t, ...), nearest, zero where the warp samples outside."""
    batch, cells = values.shape[:2]
    rest = values.shape[2:]
    maps = values.reshape(batch, cells, -1).permute(0, 2, 1).reshape(batch, -1, grid, grid)
    warped = warp.warp(maps.float(), mode='nearest')
    return warped.reshape(batch, -1, cells).permute(0, 2, 1).reshape(batch, cells, *rest).to(values.dtype)


def entropy_weight(probability: Tensor, strength: float = 1.5) -> Tensor:
    """u = exp(-strength * H(p)) of distributions over the last dimension."""
    entropy = -(probability * probability.clamp(min=1e-12).log()).sum(-1)
    return torch.exp(-strength * entropy)


@torch.no_grad()
def pseudo_labels(additional_correlation: Tensor, warp, grid: int, image_size: int, source_boxes: Tensor,
                  target_boxes: Tensor, temperature: float = 0.1, p_cutoff: float = 0.5,
                  entropy_strength: float = 1.5, fb_alpha1: float = 0.1, fb_alpha2: float = 0.5,
                  use_fb_check: bool = True) -> PseudoLabels:
    """Pseudo-labels for the strong (warped) target's cells from R_a (B, N_t, N_s) (module docstring)."""
    inside = warp_cells(torch.ones_like(additional_correlation[..., :1]), warp, grid)[..., 0] > 0.5
    warped = warp_cells(additional_correlation, warp, grid)  # (B, N_t, N_s)
    probability = torch.softmax((warped - warped.max(dim=-1, keepdim=True).values) / temperature, dim=-1)
    confidence, source_cell = probability.max(dim=-1)
    in_source_box = torch.gather(cells_in_boxes(source_boxes, image_size, grid), 1, source_cell)
    in_target_box = warp_cells(cells_in_boxes(target_boxes, image_size, grid)[..., None].float(), warp,
                               grid)[..., 0] > 0.5
    mask = inside & (confidence >= p_cutoff) & in_source_box & in_target_box
    if use_fb_check:
        consistent = forward_backward_mask(additional_correlation, grid, fb_alpha1, fb_alpha2)
        mask &= warp_cells(consistent[..., None].float(), warp, grid)[..., 0] > 0.5
    return PseudoLabels(source_cell, confidence, entropy_weight(probability, entropy_strength), mask)


def unsupervised_loss(strong_correlation: Tensor, labels: PseudoLabels, temperature: float = 0.1) -> Tensor:
    """Entropy-weighted cross-entropy of R_st (B, N_t, N_s) against the pseudo-labels on their mask;
    0 (with a graph) when no cell is masked in."""
    if not labels.mask.any():
        return strong_correlation.sum() * 0
    logits = strong_correlation[labels.mask] / temperature  # (M, N_s)
    cross_entropy = F.cross_entropy(logits, labels.source_cell[labels.mask], reduction='none')
    return (labels.weight[labels.mask] * cross_entropy).mean()


def balance(supervised: Tensor, unsupervised: Tensor, eps: Optional[float] = 1e-12) -> Tensor:
    """SemiMatch's dynamic balancing: the unsupervised loss rescaled to the supervised loss's value
    (gradients keep their direction); 0 when the unsupervised loss is 0."""
    scale = supervised.detach() / unsupervised.detach().clamp(min=eps)
    return unsupervised * scale
