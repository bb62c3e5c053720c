"""DAVIS-2017 semi-supervised metric: J (region IoU) and F (boundary F-measure), as the official code."""
from typing import List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from sfc_plugin.evaluation.functional import davis_statistics, davis_video_scores
from sfc_plugin.registry import METRICS
from sfc_plugin.structures import VOID_ID
from sfc_plugin.utils import read_label_png
from sfc_plugin.utils.table import format_table

DAVIS_KEYS = ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay')


def read_ground_truth(video: str, anno_paths: Sequence[Optional[str]]) -> np.ndarray:
    """(T, H, W) uint8 ids of every frame's indexed annotation; ValueError naming what is missing."""
    frames = []
    for t, path in enumerate(anno_paths):
        if path is None:
            raise ValueError(f'video {video!r}: no ground-truth annotation for frame {t}; DAVIS scoring '
                             'needs every frame annotated (test-dev/challenge splits only have the first)')
        ids, _ = read_label_png(path, require_indexed=True)
        if frames and ids.shape != frames[0].shape:
            raise ValueError(f'{path}: annotation is {ids.shape[1]}x{ids.shape[0]} (WxH), frame 0\'s '
                             f'is {frames[0].shape[1]}x{frames[0].shape[0]}')
        frames.append(ids)
    return np.stack(frames)


@METRICS.register_module()
class DAVISMetric(BaseMetric):
    """DAVIS-2017 semi-supervised J&F, matching the official ``davis2017-evaluation`` code.

    Objects are the ids present in frame 0's ground truth (other than 0 and the void id 255; on
    DAVIS-2017 these are the official 1..N). Per object, J and F are taken on frames 1..T-2 (first
    and last excluded) and summarised as Mean (nan-mean), Recall (fraction of frames > 0.5) and
    Decay (first-quarter mean minus last-quarter mean, the official 4 bins). Each key is the mean
    of that statistic over all objects of all videos; 'J&F-Mean' is (J-Mean + F-Mean) / 2.
    Values are in percent (the published 71.3 J&F), the official code prints fractions.

    Void pixels: the official semi-supervised evaluation scores them as background (no void
    mask); ``exclude_void=True`` leaves them out instead. A predicted id that is not an object
    (e.g. 255) counts as background (the official code refuses such files).

    After ``compute_metrics``, ``per_object_rows`` holds one row per object
    (``dict(sequence='<video>_<id>', J-Mean=..., ...)``), also logged as a table.

    ``process`` expects per video: ``video``, ``pred_ids`` (T, H, W) uint8 at the annotations'
    size and ``anno_paths`` (every frame's PNG); the ground truth is read there, so only the
    per-object numbers are kept.

    Args:
        bound_th: Boundary tolerance: a fraction of the image diagonal (< 1) or pixels (>= 1).
        exclude_void: Leave void (255) pixels out of J and F.
        collect_device: Device used to gather results across ranks ('cpu' or 'gpu').
        prefix: Prefix of the metric names (none by default: keys are as listed above).
    """

    def __init__(self, bound_th: float = 0.008, exclude_void: bool = False, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.bound_th = bound_th
        self.exclude_void = exclude_void
        self.per_object_rows: List[dict] = []

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(self.evaluate_video(sample['video'], np.asarray(sample['pred_ids']),
                                                    sample['anno_paths']))

    def evaluate_video(self, video: str, pred_ids: np.ndarray, anno_paths: Sequence[Optional[str]]) -> dict:
        """Per-object statistics of one video: ``dict(video, objects=[dict(object_id, J-Mean, ...)])``."""
        if len(anno_paths) < 3:
            raise ValueError(f'video {video!r} has {len(anno_paths)} frames; DAVIS scoring leaves out the '
                             'first and the last and needs at least 3')
        gt_ids = read_ground_truth(video, anno_paths)
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(f'video {video!r}: prediction {pred_ids.shape} does not match the ground truth '
                             f'{gt_ids.shape} (T, H, W) read from {anno_paths[0]} ...')
        object_ids = sorted(set(np.unique(gt_ids[0]).tolist()) - {0, VOID_ID})
        j_scores, f_scores = davis_video_scores(gt_ids, pred_ids, object_ids, self.bound_th, self.exclude_void)
        objects = []
        for object_id, j_frames, f_frames in zip(object_ids, j_scores, f_scores):
            j_mean, j_recall, j_decay = davis_statistics(j_frames)
            f_mean, f_recall, f_decay = davis_statistics(f_frames)
            objects.append({'object_id': object_id, 'J-Mean': j_mean, 'J-Recall': j_recall, 'J-Decay': j_decay,
                            'F-Mean': f_mean, 'F-Recall': f_recall, 'F-Decay': f_decay})
        return dict(video=video, objects=objects)

    def compute_metrics(self, results: List[dict]) -> dict:
        rows = []
        for result in results:
            for scores in result['objects']:
                row = {'sequence': f'{result["video"]}_{scores["object_id"]}'}
                row.update({key: 100 * value for key, value in scores.items() if key != 'object_id'})
                rows.append(row)
        if not rows:
            raise ValueError('DAVISMetric: no object was scored (no video, or no object in any frame 0)')
        metrics = {key: float(np.mean([row[key] for row in rows])) for key in DAVIS_KEYS[1:]}
        metrics = {'J&F-Mean': (metrics['J-Mean'] + metrics['F-Mean']) / 2, **metrics}
        self.per_object_rows = rows
        print_log('\n' + format_table('DAVIS per object (%)', ['Sequence', 'J-Mean', 'F-Mean'],
                                      [[row['sequence'], row['J-Mean'], row['F-Mean']] for row in rows]),
                  logger='current')
        return metrics
