"""SemiMatch's pieces on hand-made correlations: forward-backward mask, the pseudo-label mask chain,
the entropy weight, the weighted cross-entropy and the dynamic balancing."""
import math

import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.correspondence.semimatch import (balance, cells_in_boxes, entropy_weight, forward_backward_mask,
                                                 pseudo_labels, unsupervised_loss, warp_cells)

GRID = 4
CELLS = GRID * GRID


def correlation_of(matches, strength: float = 10.0) -> torch.Tensor:
    """(1, N_t, N_s): target cell t peaks at source cell matches[t] (others 0)."""
    correlation = torch.zeros(1, CELLS, CELLS)
    for target, source in enumerate(matches):
        correlation[0, target, source] = strength
    return correlation


class ShiftRight:
    """A warp of the target that moves content one cell to the right: output cell (i, j) reads input
    cell (i, j - 1); column 0 reads from outside (zero)."""

    def warp(self, maps: torch.Tensor, mode: str = 'bilinear') -> torch.Tensor:
        assert mode == 'nearest'
        shifted = torch.zeros_like(maps)
        shifted[..., 1:] = maps[..., :-1]
        return shifted


def test_forward_backward_mask_on_a_known_flow():
    # target cell t matches source t (identity) except cell 5 -> source 10, whose own best target is 10
    matches = list(range(CELLS))
    matches[5] = 10
    correlation = correlation_of(matches)
    mask = forward_backward_mask(correlation, GRID, alpha1=0.1, alpha2=0.5)[0]
    expected = torch.ones(CELLS, dtype=torch.bool)
    # cell 5 = (x1, y1) -> source 10 = (x2, y2): F = (1, 1); source 10's best target is 10 (the column max
    # among targets 5 and 10 ties, argmax takes the first: 5)
    backward_target = int(correlation[0, :, 10].argmax())
    forward = torch.tensor([1.0, 1.0])
    position = torch.tensor([[float(i % GRID), float(i // GRID)] for i in range(CELLS)])
    backward = position[backward_target] - position[10]
    gap = float(((forward + backward) ** 2).sum())
    bound = 0.1 * float((forward ** 2).sum() + (backward ** 2).sum()) + 0.5
    expected[5] = gap <= bound
    # target 10 also matches source 10, whose best target is 5 now: F = 0, F_bw = (-1, -1): gap 2 > 0.1 * 2 + 0.5
    expected[10] = False
    assert torch.equal(mask, expected)


def test_cells_in_boxes_uses_cell_pixels():
    # 64 px image, 4 cells of 16 px: cell centres at 7.5, 23.5, 39.5, 55.5
    inside = cells_in_boxes(torch.tensor([[20.0, 0.0, 40.0, 10.0]]), 64, GRID)[0].view(GRID, GRID)
    expected = torch.zeros(GRID, GRID, dtype=torch.bool)
    expected[0, 1:3] = True
    assert torch.equal(inside, expected)


def test_warp_cells_moves_values_with_the_warp():
    values = torch.arange(CELLS, dtype=torch.float32).view(1, CELLS, 1)
    warped = warp_cells(values, ShiftRight(), GRID).view(GRID, GRID)
    assert torch.equal(warped[:, 0], torch.zeros(GRID))
    assert torch.equal(warped[:, 1:], torch.arange(CELLS, dtype=torch.float32).view(GRID, GRID)[:, :-1])


def test_pseudo_label_mask_chain():
    matches = list(range(CELLS))
    correlation = correlation_of(matches)
    correlation[0, 6] = 0.0  # target cell 6: flat row, low confidence
    correlation[0, 6, 0] = 0.01
    whole = torch.tensor([[0.0, 0.0, 63.0, 63.0]])
    labels = pseudo_labels(correlation, ShiftRight(), GRID, 64, whole, whole, temperature=0.1, p_cutoff=0.5,
                           use_fb_check=False)
    labels_grid = labels.source_cell[0].view(GRID, GRID)
    mask_grid = labels.mask[0].view(GRID, GRID)
    # output cell (i, j) shows input cell (i, j - 1), which matched source cell i * 4 + j - 1
    for i in range(GRID):
        for j in range(1, GRID):
            if (i, j) != (1, 3):  # shows input cell 6, whose row was flattened
                assert labels_grid[i, j] == i * GRID + j - 1
    assert not mask_grid[:, 0].any()  # outside the warp
    assert not mask_grid[1, 3]  # input cell 6 = (row 1, column 2): its row was flat
    assert mask_grid.sum() == GRID * (GRID - 1) - 1
    # source box: only source cells of column 0 -> only the output cells showing them survive
    left = torch.tensor([[0.0, 0.0, 10.0, 63.0]])
    labels = pseudo_labels(correlation, ShiftRight(), GRID, 64, left, whole, use_fb_check=False)
    assert torch.equal(labels.mask[0].view(GRID, GRID).nonzero()[:, 1].unique(), torch.tensor([1]))
    # target box: only the target's top row -> after the shift, row 0 columns 1..3
    top = torch.tensor([[0.0, 0.0, 63.0, 10.0]])
    labels = pseudo_labels(correlation, ShiftRight(), GRID, 64, whole, top, use_fb_check=False)
    expected = torch.zeros(GRID, GRID, dtype=torch.bool)
    expected[0, 1:] = True
    assert torch.equal(labels.mask[0].view(GRID, GRID), expected)
    # forward-backward: break target cell 0 (-> source 9, whose best target stays 9): masked out at output (0, 1)
    broken = correlation.clone()
    broken[0, 0] = 0.0
    broken[0, 0, 9] = 5.0
    on = pseudo_labels(broken, ShiftRight(), GRID, 64, whole, whole, use_fb_check=True)
    off = pseudo_labels(broken, ShiftRight(), GRID, 64, whole, whole, use_fb_check=False)
    assert off.mask[0, 1] and not on.mask[0, 1]
    assert torch.equal(on.mask[0, 2:], off.mask[0, 2:]) and on.mask[0, 2:].any()


def test_confidence_uses_the_temperature():
    correlation = torch.zeros(1, CELLS, CELLS)
    correlation[0, :, 3] = 0.2  # a 0.2 lead over every other cell
    identity = type('Identity', (), {'warp': lambda self, maps, mode: maps})()
    whole = torch.tensor([[0.0, 0.0, 63.0, 63.0]])
    labels = pseudo_labels(correlation, identity, GRID, 64, whole, whole, temperature=0.1, use_fb_check=False)
    expected = math.exp(2.0) / (math.exp(2.0) + CELLS - 1)
    assert torch.allclose(labels.confidence, torch.full((1, CELLS), expected))
    assert torch.equal(labels.mask, torch.full((1, CELLS), expected >= 0.5))


def test_entropy_weight_and_weighted_cross_entropy():
    probability = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    weight = entropy_weight(probability, 1.5)
    assert torch.allclose(weight, torch.tensor([math.exp(-1.5 * math.log(2)), 1.0]))

    strong = torch.randn(1, 3, 5, requires_grad=True)
    labels = type('Labels', (), {})()
    labels.mask = torch.tensor([[True, False, True]])
    labels.source_cell = torch.tensor([[4, 0, 1]])
    labels.weight = torch.tensor([[0.5, 9.0, 0.25]])
    loss = unsupervised_loss(strong, labels, temperature=0.1)
    logits = strong[0] / 0.1
    manual = (0.5 * -F.log_softmax(logits[0], 0)[4] + 0.25 * -F.log_softmax(logits[2], 0)[1]) / 2
    assert torch.allclose(loss, manual)
    labels.mask = torch.zeros(1, 3, dtype=torch.bool)
    empty = unsupervised_loss(strong, labels)
    assert empty.item() == 0.0 and empty.requires_grad


def test_dynamic_balance_matches_the_supervised_value_and_keeps_the_direction():
    parameter = torch.tensor([1.0, 2.0], requires_grad=True)
    supervised = (parameter ** 2).sum() * 3  # 15
    unsupervised = parameter.sum() * 2  # 6
    balanced = balance(supervised, unsupervised)
    assert balanced.item() == pytest.approx(15.0)
    balanced.backward()
    assert torch.allclose(parameter.grad, torch.tensor([5.0, 5.0]))  # d(2 * sum)/dp * 15 / 6
