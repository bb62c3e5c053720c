"""JHMDB pose-propagation metric: PCK normalised by the joints' bounding box, as UVC / CRW."""
from typing import List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from sfc_plugin.evaluation.functional import pck_normalized_distances, pck_per_joint
from sfc_plugin.registry import METRICS
from sfc_plugin.structures import JHMDB_JOINTS
from sfc_plugin.utils.table import format_table


@METRICS.register_module()
class JHMDBPCKMetric(BaseMetric):
    """PCK@alpha of propagated joints, as the UVC / CRW ``eval_pck.py``.

    For every frame but the first (given) and every joint with a prediction, the error is the
    Euclidean distance between the predicted and ground-truth position in original pixels,
    divided by 0.6 x the diagonal of the bounding box of that frame's ground-truth joints (taken
    over the joints that have a prediction). A joint is correct when the normalised error is
    <= alpha. PCK of a joint = correct / evaluated over all frames of all videos; the reported
    'PCK@<alpha>' is the mean over the 15 joints, in percent. A joint has no prediction when its
    propagated map vanished: NaN or negative x (the reference writes -1) in ``pred_keypoints``.

    ``process`` expects per video: ``video``, ``pred_keypoints`` (T, 15, 2) x, y in original
    pixels and ``keypoints`` (T', 15, 2) ground truth, T' <= T (only the annotated frames count).

    Args:
        alphas: Thresholds to report.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the metric names (none by default).
    """

    def __init__(self, alphas: Sequence[float] = (0.1, 0.2), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.alphas = tuple(alphas)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            video = sample['video']
            gt_joints = np.asarray(sample['keypoints'], dtype=np.float64)
            pred_joints = np.asarray(sample['pred_keypoints'], dtype=np.float64)
            if pred_joints.ndim != 3 or pred_joints.shape[1:] != gt_joints.shape[1:]:
                raise ValueError(f'video {video!r}: pred_keypoints {pred_joints.shape} do not match the ground '
                                 f'truth {gt_joints.shape} (T, joints, 2)')
            if len(pred_joints) < len(gt_joints):
                raise ValueError(f'video {video!r}: predictions for {len(pred_joints)} frames, ground truth '
                                 f'for {len(gt_joints)}')
            distances = pck_normalized_distances(pred_joints[:len(gt_joints)], gt_joints)
            self.results.append(dict(video=video, distances=distances[1:]))

    def compute_metrics(self, results: List[dict]) -> dict:
        distances = np.concatenate([result['distances'] for result in results])  # (frames, joints)
        per_joint = {alpha: 100 * pck_per_joint(distances, alpha) for alpha in self.alphas}
        names = JHMDB_JOINTS if distances.shape[1] == len(JHMDB_JOINTS) else range(distances.shape[1])
        print_log('\n' + format_table('JHMDB PCK per joint (%)', ['joint'] + [f'PCK@{a}' for a in self.alphas],
                                      [[name] + [float(per_joint[a][j]) for a in self.alphas]
                                       for j, name in enumerate(names)]),
                  logger='current')
        return {f'PCK@{alpha}': float(np.nanmean(per_joint[alpha])) for alpha in self.alphas}
