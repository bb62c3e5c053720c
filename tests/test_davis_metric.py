"""DAVIS J&F against hand computations and brute-force loops written from the official definition."""
import math
import os

import numpy as np
import pytest

from sfc_plugin.evaluation.functional import (boundary_f_measure, boundary_tolerance, davis_statistics, disk,
                                              mask_iou, seg2bmap)
from sfc_plugin.evaluation.metrics import DAVISMetric
from sfc_plugin.registry import METRICS
from sfc_plugin.utils.io import write_label_png


def square(shape, top, left, size):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def loop_boundary(mask):
    """Boundary pixels by the official rule, one pixel at a time (outside the image reads 0)."""
    height, width = mask.shape
    at = lambda y, x: bool(mask[y, x]) if y < height and x < width else False  # noqa: E731
    points = set()
    for y in range(height):
        for x in range(width):
            if y == height - 1 and x == width - 1:
                continue
            if y == height - 1:
                differs = at(y, x) != at(y, x + 1)
            elif x == width - 1:
                differs = at(y, x) != at(y + 1, x)
            else:
                differs = at(y, x) != at(y, x + 1) or at(y, x) != at(y + 1, x) or at(y, x) != at(y + 1, x + 1)
            if differs:
                points.add((y, x))
    return points


def loop_f_measure(gt, pred, radius):
    """F from boundary points matched within Euclidean distance <= radius, with the empty cases."""
    gt_points, pred_points = loop_boundary(gt), loop_boundary(pred)
    near = lambda p, points: any((p[0] - q[0])**2 + (p[1] - q[1])**2 <= radius**2 for q in points)  # noqa: E731
    if not pred_points and not gt_points:
        return 1.0
    if not pred_points or not gt_points:
        return 0.0
    precision = sum(near(p, gt_points) for p in pred_points) / len(pred_points)
    recall = sum(near(g, pred_points) for g in gt_points) / len(gt_points)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def loop_iou(gt, pred):
    inter = union = 0
    for g, p in zip(gt.ravel(), pred.ravel()):
        inter += bool(g) and bool(p)
        union += bool(g) or bool(p)
    return 1.0 if union == 0 else inter / union


def test_square_boundary_is_4s_pixels_outside_left_top_inside_right_bottom():
    mask = square((12, 12), 3, 3, 5)
    boundary = seg2bmap(mask)
    assert boundary.sum() == 4 * 5
    assert boundary[2, 2] and boundary[2, 7] and boundary[7, 2]  # outside corners top-left, top-right, bottom-left
    assert boundary[7, 3] and boundary[3, 2]  # inside bottom row, outside left column
    assert not boundary[8, 8] and not boundary[5, 5]  # beyond the bottom-right corner, interior
    assert set(zip(*np.nonzero(boundary))) == loop_boundary(mask)


def test_boundary_at_image_edges_follows_official_rule():
    mask = np.zeros((6, 7), bool)
    mask[2:, 3:] = True  # touches the right and bottom edges
    assert set(zip(*np.nonzero(seg2bmap(mask)))) == loop_boundary(mask)
    full = np.ones((5, 5), bool)
    assert seg2bmap(full).sum() == 0  # a mask covering the image has no boundary


def test_tolerance_radius():
    assert boundary_tolerance((480, 854)) == 8  # the DAVIS 480p value
    assert boundary_tolerance((64, 64)) == 1  # ceil(0.008 * 90.5)
    assert boundary_tolerance((100, 100)) == 2  # ceil(0.008 * 141.4)
    assert boundary_tolerance((64, 64), bound_th=3) == 3  # >= 1 means pixels
    assert disk(2).sum() == 13 and disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def test_disk_is_skimage_disk():
    from skimage.morphology import disk as skimage_disk
    for radius in range(1, 10):
        np.testing.assert_array_equal(disk(radius), skimage_disk(radius))


@pytest.mark.parametrize('shape,size,shift,radius', [((64, 64), 10, 3, 1), ((100, 100), 20, 3, 2),
                                                     ((100, 100), 20, 5, 2)])
def test_shifted_square_f_and_j_closed_form(shape, size, shift, radius):
    # Shifting an s x s square right by d > r keeps 2s + 4r + 2 - 2d of its 4s boundary pixels
    # within r of the other boundary (both ways): the top and bottom rows where they still overlap
    # (+ r), and r + 1 + r pixels of the leading column near the other square's top and bottom rows.
    gt = square(shape, 30, 20, size)
    pred = square(shape, 30, 20 + shift, size)
    assert boundary_tolerance(shape) == radius
    expected_f = (2 * size + 4 * radius + 2 - 2 * shift) / (4 * size)
    assert boundary_f_measure(gt, pred) == pytest.approx(expected_f)
    assert loop_f_measure(gt, pred, radius) == pytest.approx(expected_f)
    assert mask_iou(gt, pred) == pytest.approx((size - shift) / (size + shift))


def test_shift_within_tolerance_gives_perfect_f():
    gt = square((100, 100), 30, 20, 20)
    assert boundary_f_measure(gt, square((100, 100), 30, 22, 20)) == 1.0  # d = 2 = r
    assert boundary_f_measure(gt, square((100, 100), 31, 21, 20)) == 1.0  # diagonal by (1, 1): sqrt(2) <= 2
    assert boundary_f_measure(gt, square((100, 100), 30, 23, 20)) < 1.0


def test_empty_masks():
    empty = np.zeros((20, 20), bool)
    blob = square((20, 20), 5, 5, 6)
    assert mask_iou(empty, empty) == 1.0 and boundary_f_measure(empty, empty) == 1.0
    assert mask_iou(blob, empty) == 0.0 and boundary_f_measure(blob, empty) == 0.0  # missed object
    assert mask_iou(empty, blob) == 0.0 and boundary_f_measure(empty, blob) == 0.0  # object that is not there


def test_random_shapes_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(8):
        shape = (int(rng.integers(12, 30)), int(rng.integers(12, 30)))
        gt = rng.random(shape) < 0.3
        pred = gt ^ (rng.random(shape) < 0.1)
        radius = int(rng.integers(1, 4))
        assert set(zip(*np.nonzero(seg2bmap(gt)))) == loop_boundary(gt)
        assert boundary_f_measure(gt, pred, bound_th=radius) == pytest.approx(loop_f_measure(gt, pred, radius))
        assert mask_iou(gt, pred) == pytest.approx(loop_iou(gt, pred))


def test_void_pixels_excluded_only_on_request():
    gt = square((20, 20), 4, 4, 6)
    pred = square((20, 20), 4, 4, 10)  # 100 predicted pixels, 36 of them right
    void = np.zeros((20, 20), bool)
    void[4:14, 10:14] = True  # 40 pixels of the prediction, none of the ground truth
    assert mask_iou(gt, pred) == pytest.approx(36 / 100)
    assert mask_iou(gt, pred, void) == pytest.approx(36 / (100 - 40))


def test_statistics_mean_recall_decay_by_hand():
    values = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    # 10 frames: bin edges round(linspace(1, 10, 5)) - 1 = [0, 2, 5, 7, 9]; first bin frames 0..2,
    # last bin frames 7..9 (edges included).
    mean, recall, decay = davis_statistics(values)
    assert mean == pytest.approx(0.45)
    assert recall == pytest.approx(4 / 10)  # 0.9, 0.8, 0.7, 0.6 are > 0.5 (0.5 is not)
    assert decay == pytest.approx((0.9 + 0.8 + 0.7) / 3 - (0.2 + 0.1 + 0.0) / 3)
    # 4 frames: edges [0, 1, 2, 2, 3] -> first bin frames 0..1, last bin frames 2..3
    assert davis_statistics(np.array([1.0, 0.5, 0.25, 0.0]))[2] == pytest.approx(0.75 - 0.125)
    assert davis_statistics(np.array([np.nan, 0.6, 0.8]))[0] == pytest.approx(0.7)  # nan-mean


def write_video_annotations(folder, gt_frames):
    paths = []
    for t, ids in enumerate(gt_frames):
        path = os.path.join(folder, f'{t:05d}.png')
        write_label_png(path, ids)
        paths.append(path)
    return paths


def make_video(shape=(40, 40)):
    """6 frames, objects 1 and 2; object 2 leaves after frame 2. Prediction: object 1 lags 2 px
    behind from frame 1 on; object 2 is right while present, then wrongly kept in frame 3 only.
    Frame 5 (last) and the prediction of frame 0 are garbage: they must not count."""
    gt, pred = [], []
    for t in range(6):
        g = np.zeros(shape, np.uint8)
        p = np.zeros(shape, np.uint8)
        g[square(shape, 5, 5 + 2 * t, 8)] = 1
        p[square(shape, 5, 5 + 2 * max(t - 1, 0), 8)] = 1
        if t <= 2:
            g[square(shape, 25, 25, 6)] = 2
            p[square(shape, 25, 25, 6)] = 2
        if t == 3:
            p[square(shape, 25, 25, 6)] = 2
        gt.append(g)
        pred.append(p)
    pred[0][:] = 2
    pred[5][:] = 0
    return np.stack(gt), np.stack(pred)


def expected_statistics(per_frame):
    """Mean, recall, decay of 4 scored frames (bins frames 0..1 and 2..3)."""
    per_frame = np.asarray(per_frame)
    return per_frame.mean(), (per_frame > 0.5).mean(), per_frame[:2].mean() - per_frame[2:].mean()


def test_metric_on_a_video(tmp_path):
    gt, pred = make_video()
    anno_paths = write_video_annotations(str(tmp_path / 'gt'), gt)
    metric = METRICS.build(dict(type='DAVISMetric'))
    metric.process(None, [dict(video='clip', pred_ids=pred, anno_paths=anno_paths, task='vos')])
    result = metric.evaluate(1)

    radius = boundary_tolerance(gt.shape[1:])  # 1 px at 40 x 40
    rows = {}
    for object_id in (1, 2):
        j = [loop_iou(gt[t] == object_id, pred[t] == object_id) for t in range(1, 5)]
        f = [loop_f_measure(gt[t] == object_id, pred[t] == object_id, radius) for t in range(1, 5)]
        rows[object_id] = expected_statistics(j), expected_statistics(f)
    # object 1 lags 2 px: J = 6/10 each scored frame; object 2: right, right, wrongly there, absent
    assert [loop_iou(gt[t] == 1, pred[t] == 1) for t in range(1, 5)] == pytest.approx([0.6] * 4)
    assert [loop_iou(gt[t] == 2, pred[t] == 2) for t in range(1, 5)] == [1.0, 1.0, 0.0, 1.0]

    for index, key in enumerate(('Mean', 'Recall', 'Decay')):
        assert result[f'J-{key}'] == pytest.approx(100 * np.mean([rows[o][0][index] for o in (1, 2)]))
        assert result[f'F-{key}'] == pytest.approx(100 * np.mean([rows[o][1][index] for o in (1, 2)]))
    assert result['J-Mean'] == pytest.approx(100 * (0.6 + 0.75) / 2)
    assert result['J&F-Mean'] == pytest.approx((result['J-Mean'] + result['F-Mean']) / 2)
    assert list(result) == ['J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay']
    assert [row['sequence'] for row in metric.per_object_rows] == ['clip_1', 'clip_2']
    assert metric.per_object_rows[1]['J-Mean'] == pytest.approx(75.0)


def test_metric_averages_objects_over_videos(tmp_path):
    gt, pred = make_video()
    metric = DAVISMetric()
    for video, prediction in (('a', gt.copy()), ('b', pred)):
        paths = write_video_annotations(str(tmp_path / video), gt)
        metric.process(None, [dict(video=video, pred_ids=prediction, anno_paths=paths)])
    result = metric.evaluate(2)
    assert result['J-Mean'] == pytest.approx(100 * (1 + 1 + 0.6 + 0.75) / 4)  # 4 objects, equal weight


def test_metric_void_handling(tmp_path):
    gt, _ = make_video()
    gt[:, 0:3, :] = 255  # a void band along the top
    pred = gt.copy()
    pred[pred == 255] = 1  # object 1 "predicted" over the void band
    paths = write_video_annotations(str(tmp_path / 'void'), gt)
    official = DAVISMetric()
    official.process(None, [dict(video='v', pred_ids=pred, anno_paths=paths)])
    j_official = official.evaluate(1)['J-Mean']
    excluded = DAVISMetric(exclude_void=True)
    excluded.process(None, [dict(video='v', pred_ids=pred, anno_paths=paths)])
    result = excluded.evaluate(1)
    # official: void is background, so object 1 has 64 right pixels among 64 + 120 predicted
    assert j_official == pytest.approx(100 * (64 / (64 + 120) + 1) / 2)
    assert result['J-Mean'] == pytest.approx(100.0)
    assert [row['sequence'] for row in excluded.per_object_rows] == ['v_1', 'v_2']  # 255 is not an object


def test_metric_errors_name_the_problem(tmp_path):
    gt, pred = make_video()
    paths = write_video_annotations(str(tmp_path / 'gt'), gt)
    metric = DAVISMetric()
    with pytest.raises(ValueError, match="'clip'.*prediction"):
        metric.process(None, [dict(video='clip', pred_ids=pred[:, :30], anno_paths=paths)])
    with pytest.raises(ValueError, match='no ground-truth annotation for frame 2'):
        metric.process(None, [dict(video='clip', pred_ids=pred, anno_paths=paths[:2] + [None] + paths[3:])])
    with pytest.raises(ValueError, match='at least 3'):
        metric.process(None, [dict(video='clip', pred_ids=pred[:2], anno_paths=paths[:2])])
    rgb_path = str(tmp_path / 'rgb.png')
    from PIL import Image
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(rgb_path)
    with pytest.raises(OSError, match='rgb.png.*indexed'):
        metric.process(None, [dict(video='clip', pred_ids=pred, anno_paths=paths[:3] + [rgb_path] + paths[4:])])


def test_f_measure_radius_matches_diagonal_rule_on_480p_sizes():
    gt = square((480, 854), 100, 100, 200)
    moved = square((480, 854), 100, 108, 200)  # 8 px = ceil(0.008 * 979.6)
    assert boundary_f_measure(gt, moved) == 1.0
    moved = square((480, 854), 100, 109, 200)
    expected = (2 * 200 + 4 * 8 + 2 - 2 * 9) / (4 * 200)
    assert boundary_f_measure(gt, moved) == pytest.approx(expected)
    assert math.isclose(mask_iou(gt, moved), 191 / 209)
