"""The returning-object benchmark: its appearance oracle against a hand computation, and its rows on videos whose
returning object can and cannot be told apart by its features."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.benchmarks.returning import (appearance_oracle, benchmark_returning, cell_labels,
                                             returning_object_rows)
from sfc_plugin.propagation import PropagationSettings


def test_appearance_oracle_against_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(3, 8, 5, 6, generator=generator), dim=1)  # (T, C, h, w)
    label_maps = torch.randint(0, 3, (3, 5, 6), generator=generator).numpy()
    labels = torch.stack([cell_labels(m, 3, (5, 6)) for m in label_maps])  # one pixel per cell: one-hot
    settings = PropagationSettings(topk=4, temperature=0.2, radius=1.0, radius_on_first=True)
    result = appearance_oracle(feats, labels, 0, [1, 2], 2, settings)

    keys, key_labels = feats[0].flatten(1).T.double(), labels[0].flatten(1).T.double()  # (30, C), (30, K)
    recalls, false_cells = [], []
    for t in (1, 2):
        read = []
        for query in feats[t].flatten(1).T.double():  # every cell, every key: no radius
            affinity = keys @ query
            top = torch.argsort(affinity, descending=True)[:4]
            weights = torch.softmax(affinity[top] / 0.2, 0)
            read.append(int((weights[:, None] * key_labels[top]).sum(0).argmax()))
        read, own = np.array(read) == 2, label_maps[t].ravel() == 2
        recalls.append(read[own].mean())
        false_cells.append((read & ~own).sum())
    assert result['recall'] == pytest.approx(100 * np.mean(recalls))
    assert result['false_cells'] == pytest.approx(np.mean(false_cells))


def video(returning_looks_like_background: bool):
    """8 frames of 16 x 16 pixels (4 x 4 cells of 4 pixels): object 1 still at the left, object 2 moving right,
    absent in frames 3-4; features one unit vector per label (object 2's the background's after its return,
    if asked)."""
    label_maps = np.zeros((8, 16, 16), np.uint8)
    label_maps[:, 4:12, 0:4] = 1
    for t, left in enumerate([4, 4, 8, None, None, 8, 12, 12]):
        if left is not None:
            label_maps[t, 4:12, left:left + 4] = 2
    basis = torch.eye(4)[:3]  # (K, C)
    cells = torch.stack([cell_labels(m, 3, (4, 4)) for m in label_maps])  # (T, K, h, w)
    feats = torch.einsum('tkhw,kc->tchw', cells, basis)
    if returning_looks_like_background:
        feats[5:] = torch.einsum('tkhw,kc->tchw', cells[5:], basis[[0, 1, 0]])
    return F.normalize(feats, dim=1), label_maps


def test_rows_of_a_returning_object_its_features_tell_apart_and_one_they_do_not():
    settings = PropagationSettings(topk=3, radius=1.5)
    feats, label_maps = video(returning_looks_like_background=False)
    assert returning_object_rows('clear', feats, label_maps, [], settings) == []
    [row] = returning_object_rows('clear', feats, label_maps, [3, 4], settings)
    assert row['object'] == 2 and row['hidden'] == '3-4' and row['back'] == 3
    assert row['view_frame'] == 0  # the first of its largest views before it was hidden
    assert row['frame0_recall'] == 100 and row['view_recall'] == 100
    assert row['frame0_false_cells'] == 0 and row['view_false_cells'] == 0
    assert row['propagated_iou'] > 90  # frame 0, read without the radius, finds it again

    feats, label_maps = video(returning_looks_like_background=True)
    [row] = returning_object_rows('camouflaged', feats, label_maps, [3, 4], settings)
    assert row['frame0_recall'] == 0 and row['view_recall'] == 0
    assert row['propagated_iou'] < 10


def test_benchmark_returning_needs_the_turning_benchmark_meta(tmp_path):
    with pytest.raises(FileNotFoundError, match='meta.json'):
        benchmark_returning(None, str(tmp_path))
