"""PCK (percentage of correct keypoints) as the semantic-correspondence papers compute it.

A predicted target keypoint is correct at ``alpha`` when its distance to the ground truth is at most
``alpha * size`` (``<=``, as HPF/SCOT/CATs), ``size`` being the pair's reference size: SPair-71k the
max side of the target object's box, PF-PASCAL the max side of the target image (or of its box),
PF-WILLOW the max side of the target keypoints' box (HPF / SCOT's protocol; under CATs' the
evaluation model transfers the other way and supplies source-side sizes, see ``model.py``). Keypoints
not visible in both images are not scored; a non-finite prediction (a matcher that declined, e.g. a
non-mutual match) is wrong.

Two averages, both offered: per pair (each pair's fraction of correct keypoints, averaged over
pairs: HPF, SCOT, CATs, SemiMatch) and per keypoint (all keypoints pooled).
"""
from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np

AVERAGES = ('pair', 'kpt')


def pck_hits(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, size: float,
             alphas: Sequence[float]) -> np.ndarray:
    """(A, V) bool: keypoint v (of the V valid ones) within ``alpha * size`` of the truth, per alpha.

    Args:
        pred, gt: (K, 2) x, y in target pixels.
        valid: (K,) bool, the keypoints to score.
        size: the pair's reference size in pixels (> 0).
        alphas: thresholds as fractions of ``size``.
    """
    pred, gt, valid = np.asarray(pred, np.float64), np.asarray(gt, np.float64), np.asarray(valid, bool)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 2 or valid.shape != pred.shape[:1]:
        raise ValueError(f'pck_hits: pred {pred.shape} and gt {gt.shape} must be (K, 2), valid {valid.shape} (K,)')
    if not np.isfinite(size) or size <= 0:
        raise ValueError(f'pck_hits: the reference size must be a positive number, got {size}')
    distance = np.linalg.norm(pred[valid] - gt[valid], axis=1)  # (V,), NaN for a declined match
    with np.errstate(invalid='ignore'):
        return np.stack([distance <= alpha * size for alpha in alphas])


def summarize_pck(records: List[dict], alphas: Sequence[float]) -> Dict[str, Dict[str, np.ndarray]]:
    """Per-pair and per-keypoint PCK overall, per category and per difficulty value.

    Args:
        records: one per pair: ``category`` (str), ``hits`` ((A, V) bool from :func:`pck_hits`) and
            ``difficulty`` (dict flag -> value; may be empty). Pairs with no valid keypoint are skipped.

    Returns:
        ``{group: {'pair': (A,) PCK, 'kpt': (A,) PCK, 'pairs': n, 'kpts': n}}`` in [0, 1]; groups are
        ``'all'``, ``'category/<name>'`` and ``'<flag>/<value>'``.
    """
    groups: Dict[str, List[np.ndarray]] = defaultdict(list)
    for record in records:
        hits = np.asarray(record['hits'], bool)
        if hits.shape[1] == 0:
            continue
        keys = ['all', f'category/{record["category"]}']
        keys += [f'{flag}/{value}' for flag, value in sorted(record.get('difficulty', {}).items())]
        for key in keys:
            groups[key].append(hits)
    summary = {}
    for key, hit_list in groups.items():
        summary[key] = {
            'pair': np.mean([hits.mean(axis=1) for hits in hit_list], axis=0),
            'kpt': np.concatenate(hit_list, axis=1).mean(axis=1),
            'pairs': len(hit_list),
            'kpts': sum(hits.shape[1] for hits in hit_list),
        }
    return summary
