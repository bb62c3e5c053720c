"""FC positive mask and loss against explicit Python loops (docs/method.md section 2)."""
import math

import pytest
import torch

from sfc_plugin.models import FCLoss, fc_positive_mask
from sfc_plugin.registry import MODELS


def loop_mask(box1, box2, size1, size2, radius=0.5):
    """The rule written out cell by cell: returns (list of lists of bool, smallest margin to r)."""
    def centres(box, size):
        x0, y0, x1, y1 = box
        h, w = size
        bin_w, bin_h = (x1 - x0) / w, (y1 - y0) / h
        cells = [(x0 + (col + 0.5) * bin_w, y0 + (row + 0.5) * bin_h)
                 for row in range(h) for col in range(w)]
        return cells, math.hypot(bin_w, bin_h)

    cells1, diag1 = centres(box1, size1)
    cells2, diag2 = centres(box2, size2)
    mask, margin = [], float('inf')
    for (xa, ya) in cells1:
        row = []
        for (xb, yb) in cells2:
            ratio = math.hypot(xa - xb, ya - yb) / max(diag1, diag2)
            margin = min(margin, abs(ratio - radius))
            row.append(ratio < radius)
        mask.append(row)
    return mask, margin


CASES = [
    # (box1, box2, size1, size2): overlapping crops of different sizes and grids
    ((0.0, 0.0, 0.5, 0.5), (0.2, 0.1, 0.7, 0.7), (4, 4), (3, 5)),
    ((0.1, 0.3, 0.9, 0.6), (0.05, 0.25, 0.55, 0.95), (3, 6), (4, 4)),
    # a horizontally flipped second view (x0 > x1)
    ((0.0, 0.0, 0.6, 0.6), (0.8, 0.1, 0.3, 0.5), (4, 4), (4, 4)),
]


@pytest.mark.parametrize('box1, box2, size1, size2', CASES)
def test_mask_matches_the_rule_cell_by_cell(box1, box2, size1, size2):
    expected, margin = loop_mask(box1, box2, size1, size2)
    assert margin > 1e-4  # no pair sits on the threshold, so float rounding cannot flip one
    mask = fc_positive_mask(torch.tensor([box1]), torch.tensor([box2]), size1, size2)
    assert mask.dtype == torch.bool and mask.shape == (1, size1[0] * size1[1], size2[0] * size2[1])
    assert mask[0].tolist() == expected
    assert 0 < mask.sum() < mask.numel()  # the case has both positives and negatives


def test_mask_is_per_sample():
    boxes1 = torch.tensor([CASES[0][0], CASES[2][0]])
    boxes2 = torch.tensor([CASES[0][1], CASES[2][1]])
    mask = fc_positive_mask(boxes1, boxes2, (4, 4), (4, 4))
    for index in range(2):
        expected, _ = loop_mask(boxes1[index].tolist(), boxes2[index].tolist(), (4, 4), (4, 4))
        assert mask[index].tolist() == expected


def test_identical_boxes_pair_each_cell_with_itself():
    box = torch.tensor([[0.1, 0.2, 0.7, 0.8]])
    mask = fc_positive_mask(box, box, (5, 5), (5, 5))
    assert torch.equal(mask[0], torch.eye(25, dtype=torch.bool))
    # with tall bins a cell also reaches its horizontal neighbours, but always itself
    tall = torch.tensor([[0.0, 0.0, 0.1, 1.0]])
    assert torch.all(torch.diagonal(fc_positive_mask(tall, tall, (4, 4), (4, 4))[0]))


def test_flipped_view_pairs_column_x_with_column_w_minus_1_minus_x():
    h, w = 3, 5
    box = torch.tensor([[0.1, 0.2, 0.9, 0.8]])
    flipped = torch.tensor([[0.9, 0.2, 0.1, 0.8]])
    mask = fc_positive_mask(box, flipped, (h, w), (h, w))[0]
    expected = torch.zeros(h * w, h * w, dtype=torch.bool)
    for row in range(h):
        for col in range(w):
            expected[row * w + col, row * w + (w - 1 - col)] = True
    assert torch.equal(mask, expected)


def loop_loss(pred, target, box1, box2, radius=0.5):
    """-2 * mean over samples of the mean cosine over positive pairs, pair by pair."""
    batch, channels = pred.shape[:2]
    size1, size2 = tuple(pred.shape[-2:]), tuple(target.shape[-2:])
    per_sample = []
    for b in range(batch):
        mask, _ = loop_mask(box1[b].tolist(), box2[b].tolist(), size1, size2, radius)
        p = pred[b].reshape(channels, -1)
        z = target[b].reshape(channels, -1)
        total, count = 0.0, 0
        for i, row in enumerate(mask):
            for j, positive in enumerate(row):
                if positive:
                    total += float(torch.dot(p[:, i], z[:, j]) / (p[:, i].norm() * z[:, j].norm()))
                    count += 1
        per_sample.append(total / (count + 1e-6))
    return -2 * sum(per_sample) / batch


def test_loss_value_matches_pairwise_loops():
    torch.manual_seed(0)
    pred = torch.randn(2, 8, 4, 4)
    target = torch.randn(2, 8, 3, 5)
    box1 = torch.tensor([CASES[0][0], CASES[2][0]])
    box2 = torch.tensor([CASES[0][1], (0.7, 0.0, 0.2, 0.6)])  # second sample: flipped
    loss = FCLoss(radius=0.5)(pred, target, box1, box2)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(loop_loss(pred, target, box1, box2), abs=1e-5)
    weighted = MODELS.build(dict(type='FCLoss', radius=0.5, loss_weight=0.5))
    assert weighted(pred, target, box1, box2).item() == pytest.approx(0.5 * loss.item(), abs=1e-6)


def test_identical_features_on_identical_crops_give_minus_two():
    features = torch.randn(3, 16, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)
    assert FCLoss()(features, features.clone(), boxes, boxes).item() == pytest.approx(-2.0, abs=1e-5)
    # disjoint crops: no positive pair, the loss is 0 rather than NaN
    far = torch.tensor([[0.0, 0.0, 0.2, 0.2]] * 3)
    other = torch.tensor([[0.7, 0.7, 1.0, 1.0]] * 3)
    assert FCLoss()(features, features, far, other).item() == 0.0
