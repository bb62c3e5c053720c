"""VIP mIoU against hand-built confusions and an explicit per-pixel count."""
import os

import numpy as np
import pytest
from PIL import Image

from sfc_plugin.evaluation.functional import confusion_histogram, iou_from_histogram
from sfc_plugin.evaluation.metrics import VIPMetric
from sfc_plugin.registry import METRICS


def loop_miou(pairs, num_classes):
    """Per-pixel counts over all (gt, pred) frames; IoU per class present; mean over those."""
    tp = np.zeros(num_classes)
    gt_count = np.zeros(num_classes)
    pred_count = np.zeros(num_classes)
    for gt, pred in pairs:
        for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist()):
            if not 0 <= g < num_classes:
                continue
            gt_count[g] += 1
            if 0 <= p < num_classes:
                pred_count[p] += 1
                tp[g] += g == p
    present = gt_count + pred_count > 0
    return 100 * np.mean(tp[present] / (gt_count + pred_count - tp)[present])


def test_histogram_and_iou_by_hand():
    gt = np.array([[0, 1], [2, 255]])
    pred = np.array([[0, 2], [2, 1]])
    histogram = confusion_histogram(gt, pred, 3)
    expected = np.zeros((3, 4), np.int64)
    expected[0, 0] = expected[1, 2] = expected[2, 2] = 1  # the void (255) pixel is not counted
    np.testing.assert_array_equal(histogram, expected)
    assert iou_from_histogram(histogram) == pytest.approx([1.0, 0.0, 0.5])


def test_out_of_range_prediction_is_a_miss_and_absent_class_is_nan():
    gt = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 25, 0, 0]])
    iou = iou_from_histogram(confusion_histogram(gt, pred, 4))
    assert iou[:2] == pytest.approx([1.0, 0.5])
    assert np.isnan(iou[2:]).all()  # classes 2 and 3 appear nowhere


def write_parts(folder, frames):
    os.makedirs(folder, exist_ok=True)
    paths = []
    for t, ids in enumerate(frames):
        path = os.path.join(folder, f'{t:012d}.png')
        Image.fromarray(ids.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_metric_pools_frames_and_videos_and_resizes_nearest(tmp_path):
    rng = np.random.default_rng(0)
    gt_a = rng.integers(0, 6, size=(3, 8, 10)).astype(np.uint8)
    gt_a[1, 0, :] = 255  # ignored pixels
    pred_a_small = rng.integers(0, 6, size=(3, 4, 5)).astype(np.uint8)  # half the annotation size
    pred_a = np.repeat(np.repeat(pred_a_small, 2, axis=1), 2, axis=2)  # PIL nearest, exact 2x
    gt_b = np.zeros((2, 8, 10), np.uint8)
    gt_b[:, 2:6, 3:7] = 7
    pred_b = gt_b.copy()
    pred_b[1, 2:6, 3:5] = 0
    paths_a = write_parts(str(tmp_path / 'a'), gt_a)
    paths_a[2] = None  # frame 2 of video a has no ground truth
    paths_b = write_parts(str(tmp_path / 'b'), gt_b)

    metric = METRICS.build(dict(type='VIPMetric'))
    metric.process(None, [dict(video='a', pred_ids=pred_a_small, anno_paths=paths_a, task='parts')])
    metric.process(None, [dict(video='b', pred_ids=pred_b, anno_paths=paths_b, task='parts')])
    result = metric.evaluate(2)
    expected = loop_miou([(gt_a[0], pred_a[0]), (gt_a[1], pred_a[1]), (gt_b[0], pred_b[0]), (gt_b[1], pred_b[1])], 20)
    assert result == {'mIoU': pytest.approx(expected)}


def test_metric_perfect_and_frame_count_error(tmp_path):
    gt = np.zeros((2, 6, 6), np.uint8)
    gt[:, 1:4, 1:4] = 3
    paths = write_parts(str(tmp_path / 'v'), gt)
    metric = VIPMetric()
    metric.process(None, [dict(video='v', pred_ids=gt, anno_paths=paths)])
    assert metric.evaluate(1)['mIoU'] == pytest.approx(100.0)  # classes 0 and 3, both perfect
    with pytest.raises(ValueError, match="'v'.*1 frames.*2 frames"):
        metric.process(None, [dict(video='v', pred_ids=gt[:1], anno_paths=paths)])
