"""JHMDB PCK and the joint <-> label-map encoding, against hand values and explicit loops."""
import math

import numpy as np
import pytest

from sfc_plugin.evaluation.functional import pck_normalized_distances
from sfc_plugin.evaluation.metrics import JHMDBPCKMetric
from sfc_plugin.propagation.keypoints import (cells_to_image, heatmaps_to_keypoints, keypoints_to_heatmaps,
                                              resize_keypoints)
from sfc_plugin.registry import METRICS

# A frame's ground truth: joint 0 at (100, 50) and joint 1 at (130, 90) span a 30 x 40 box
# (diagonal 50, normaliser 0.6 * 50 = 30 px); the other joints lie inside it.
BOX_CORNERS = np.array([[100.0, 50.0], [130.0, 90.0]])


def frame_joints(rng):
    inside = rng.uniform([101, 51], [129, 89], size=(13, 2))
    return np.concatenate([BOX_CORNERS, inside])


def loop_pck(gts, preds, alpha):
    """The reference eval_pck.py procedure: visibility from the prediction (x < 0 = none), box of
    the visible ground truth, frame 0 skipped, per-joint lists over all videos, mean over joints."""
    per_joint = {j: [] for j in range(15)}
    for gt, pred in zip(gts, preds):
        for k in range(1, len(gt)):
            visible = [not (np.isnan(pred[k, j, 0]) or pred[k, j, 0] < 0) for j in range(15)]
            xs = [gt[k, j, 0] for j in range(15) if visible[j]]
            ys = [gt[k, j, 1] for j in range(15) if visible[j]]
            box = 0.6 * math.hypot(max(xs) - min(xs), max(ys) - min(ys))
            for j in range(15):
                if visible[j]:
                    distance = math.hypot(pred[k, j, 0] - gt[k, j, 0], pred[k, j, 1] - gt[k, j, 1])
                    per_joint[j].append(distance / box)
    scores = [100.0 * sum(d <= alpha for d in per_joint[j]) / len(per_joint[j]) for j in range(15)]
    return sum(scores) / 15


def test_normalised_distances_by_hand():
    rng = np.random.default_rng(0)
    gt = np.stack([frame_joints(rng) for _ in range(3)])  # 3 frames
    pred = gt.copy()
    pred[0] += 1000  # frame 0 is given: never scored
    pred[1, 0] += (3.0, 0.0)  # 3 px -> 0.1
    pred[1, 1] += (3.0, 4.0)  # 5 px -> 1/6
    pred[1, 2] += (0.0, -6.0)  # 6 px -> 0.2
    pred[2, 3] += (9.0, 12.0)  # 15 px -> 0.5
    distances = pck_normalized_distances(pred, gt)
    assert np.isnan(distances[0]).all()
    assert distances[1, :3] == pytest.approx([0.1, 1 / 6, 0.2])
    assert distances[2, 3] == pytest.approx(0.5)
    assert distances[1, 3:] == pytest.approx(np.zeros(12))


def test_missing_prediction_is_skipped_and_shrinks_the_box():
    rng = np.random.default_rng(1)
    gt = np.stack([frame_joints(rng) for _ in range(2)])
    pred = gt.copy()
    pred[1, 1] = np.nan  # the box corner (130, 90) has no prediction
    pred[1, 2] = (-1.0, -1.0)  # the reference's "no prediction" marker
    pred[1, 3] += (1.0, 0.0)
    visible = np.ones(15, bool)
    visible[[1, 2]] = False
    kept = gt[1][visible]
    box = 0.6 * np.linalg.norm(kept.max(axis=0) - kept.min(axis=0))
    distances = pck_normalized_distances(pred, gt)
    assert np.isnan(distances[1, [1, 2]]).all()
    assert distances[1, 3] == pytest.approx(1.0 / box)
    assert box < 30.0


def test_metric_matches_reference_procedure_and_hand_values():
    rng = np.random.default_rng(2)
    gt_a = np.stack([frame_joints(rng) for _ in range(4)])
    gt_b = np.stack([frame_joints(rng) for _ in range(2)])
    pred_a, pred_b = gt_a.copy(), gt_b.copy()
    pred_a[0] = -1  # frame 0 garbage
    pred_a[1:, :5] += (0.0, 2.0)  # 2 px: correct at 0.1 and 0.2
    pred_a[1:, 5:10] += (4.0, 3.0)  # 5 px: only at 0.2
    pred_a[1:, 10:] += (30.0, 0.0)  # 30 px: never
    pred_b[1, :] += (0.0, 9.0)  # 9 px: never
    metric = METRICS.build(dict(type='JHMDBPCKMetric', alphas=(0.1, 0.2)))
    metric.process(None, [dict(video='a', pred_keypoints=pred_a, keypoints=gt_a)])
    metric.process(None, [dict(video='b', pred_keypoints=pred_b, keypoints=gt_b)])
    result = metric.evaluate(2)
    # per joint 4 scored frames (3 of a, 1 of b); joints 0-4 correct in 3 of 4 at both alphas
    assert result['PCK@0.1'] == pytest.approx(100 * (5 * 3 / 4) / 15)
    assert result['PCK@0.2'] == pytest.approx(100 * (10 * 3 / 4) / 15)
    for alpha in (0.1, 0.2):
        assert result[f'PCK@{alpha}'] == pytest.approx(loop_pck([gt_a, gt_b], [pred_a, pred_b], alpha))


def test_metric_random_predictions_match_reference_procedure():
    rng = np.random.default_rng(3)
    gts = [rng.uniform(0, 200, size=(n, 15, 2)) for n in (5, 3, 7)]
    preds = [gt + rng.normal(0, 15, size=gt.shape) for gt in gts]
    preds[1][2, 4] = np.nan
    metric = JHMDBPCKMetric(alphas=(0.1, 0.2, 0.3))
    for index, (gt, pred) in enumerate(zip(gts, preds)):
        metric.process(None, [dict(video=str(index), pred_keypoints=pred, keypoints=gt)])
    result = metric.evaluate(3)
    for alpha in (0.1, 0.2, 0.3):
        assert result[f'PCK@{alpha}'] == pytest.approx(loop_pck(gts, preds, alpha))


def test_metric_scores_only_annotated_frames_and_rejects_short_predictions():
    gt = np.stack([frame_joints(np.random.default_rng(4)) for _ in range(3)])
    longer = np.concatenate([gt, gt[-1:] + 1000])  # one more frame than annotated: ignored
    metric = JHMDBPCKMetric()
    metric.process(None, [dict(video='v', pred_keypoints=longer, keypoints=gt)])
    assert metric.evaluate(1)['PCK@0.1'] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="'v'.*2 frames.*3"):
        metric.process(None, [dict(video='v', pred_keypoints=gt[:2], keypoints=gt)])


def loop_heatmap(x, y, height, width, sigma):
    """The pose-hg-train drawing, one cell at a time: window [int(p - 3s), int(p + 3s + 1)),
    Gaussian centred on the window's cell (6s + 1) // 2."""
    left, top = int(x - 3 * sigma), int(y - 3 * sigma)
    right, bottom = int(x + 3 * sigma + 1), int(y + 3 * sigma + 1)
    centre = (6 * sigma + 1) // 2
    out = np.zeros((height, width))
    for row in range(height):
        for col in range(width):
            if left <= col < right and top <= row < bottom:
                dx, dy = col - left - centre, row - top - centre
                out[row, col] = math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    return out


def test_heatmaps_hand_values():
    keypoints = np.array([[5.3 * 8, 7.6 * 8], [0.3 * 8, 0.2 * 8], [-20.0 * 8, 3.0 * 8]])  # input pixels
    maps = keypoints_to_heatmaps(keypoints, (12, 10), stride=8, sigma=0.5)
    assert maps.shape == (4, 12, 10)
    joint = maps[1]
    assert joint[8, 5] == pytest.approx(1.0)  # peak on the rounded cell (5, 8)
    assert joint[8, 6] == pytest.approx(math.exp(-2))  # one cell away
    assert joint[8, 3] == pytest.approx(math.exp(-8))  # two cells left: inside the 4-cell window
    assert joint[8, 7] == 0.0  # two cells right: outside it
    assert np.count_nonzero(joint) == 16
    assert maps[2][1, 1] == pytest.approx(1.0)  # the reference's int() truncation near the origin
    assert maps[3].sum() == 0  # joint outside the map: empty channel
    np.testing.assert_array_equal(maps[0], (maps[1:].sum(axis=0) == 0).astype(np.float32))


def test_heatmaps_match_loops():
    rng = np.random.default_rng(5)
    keypoints = rng.uniform(-16, 100, size=(15, 2))
    for sigma in (0.5, 1.0):
        maps = keypoints_to_heatmaps(keypoints, (11, 13), stride=8, sigma=sigma)
        for j, (x, y) in enumerate(keypoints / 8):
            np.testing.assert_allclose(maps[j + 1], loop_heatmap(x, y, 11, 13, sigma), atol=1e-6)


def test_decode_top3_weighted_mean():
    maps = np.zeros((3, 6, 8))
    maps[1, 3, 2], maps[1, 3, 4], maps[1, 5, 2], maps[1, 0, 0] = 0.5, 0.3, 0.2, 0.1  # (row, col)
    coords = heatmaps_to_keypoints(maps, topk=3)
    assert coords[0] == pytest.approx([(2 * 0.5 + 4 * 0.3 + 2 * 0.2) / 1.0, (3 * 0.5 + 3 * 0.3 + 5 * 0.2) / 1.0])
    assert np.isnan(coords[1]).all()  # empty map: no prediction
    maps[0] = 5.0  # the background channel is ignored
    assert heatmaps_to_keypoints(maps, topk=3)[0] == pytest.approx(coords[0])


def test_encode_decode_round_trip_and_scaling():
    ori_shape, input_size, stride = (240, 320), (320, 320), 8
    rng = np.random.default_rng(6)
    keypoints = rng.uniform([20, 20], [300, 220], size=(15, 2))  # original pixels
    maps = keypoints_to_heatmaps(resize_keypoints(keypoints, ori_shape, input_size), (40, 40), stride)
    decoded = cells_to_image(heatmaps_to_keypoints(maps), stride, input_size, ori_shape)
    cell_in_original = np.array([stride * 320 / 320, stride * 240 / 320])
    assert (np.abs(decoded - keypoints) <= cell_in_original).all()  # within one feature cell
    assert cells_to_image(np.array([10.0, 20.0]), 8, (320, 320), (240, 320)) == pytest.approx([80.0, 120.0])
    assert resize_keypoints(np.array([80.0, 120.0]), (240, 320), (320, 320)) == pytest.approx([80.0, 160.0])
