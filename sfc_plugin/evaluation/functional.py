"""Pure metric functions of the three label-propagation benchmarks (numpy in, numbers out).

- DAVIS-2017: region similarity J and boundary F-measure exactly as the official
  ``davis2017-evaluation`` code (``db_eval_iou``, ``db_eval_boundary``, ``db_statistics``).
- JHMDB: PCK normalised by the bounding box of the joints, as the UVC / CRW ``eval_pck.py``.
- VIP: mean IoU from a confusion histogram, as the VIP ``test_parsing.py`` used by UVC / CRW.
"""
import math
import warnings
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from sfc_plugin.structures import VOID_ID

def mask_iou(gt_mask: np.ndarray, pred_mask: np.ndarray, void_mask: Optional[np.ndarray] = None) -> float:
    """Region similarity J of two binary (H, W) masks; 1 when both are empty.

    Pixels of ``void_mask`` are left out of intersection and union.
    """
    gt_mask, pred_mask = gt_mask.astype(bool), pred_mask.astype(bool)
    kept = np.ones_like(gt_mask) if void_mask is None else ~void_mask.astype(bool)
    intersection = np.count_nonzero(gt_mask & pred_mask & kept)
    union = np.count_nonzero((gt_mask | pred_mask) & kept)
    return 1.0 if union == 0 else intersection / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary map (H, W) bool of a binary mask, as the official DAVIS ``_seg2bmap``.

    A pixel is a boundary when it differs from its right, bottom or bottom-right neighbour
    (out-of-image neighbours read as 0). On the last row only the right neighbour counts, on the
    last column only the bottom one, and the bottom-right corner pixel is never a boundary.
    """
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def disk(radius: int) -> np.ndarray:
    """Disk structuring element (2r+1, 2r+1) uint8: offsets with x^2 + y^2 <= r^2 (skimage's disk)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[None, :]**2 + offsets[:, None]**2 <= radius**2).astype(np.uint8)


def boundary_tolerance(image_shape: Sequence[int], bound_th: float = 0.008) -> int:
    """Matching distance in pixels: ``bound_th`` itself when >= 1, else ceil(bound_th * diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(image_shape[0], image_shape[1])))


def boundary_f_measure(gt_mask: np.ndarray,
                       pred_mask: np.ndarray,
                       void_mask: Optional[np.ndarray] = None,
                       bound_th: float = 0.008) -> float:
    """Boundary F-measure of two binary (H, W) masks, as the official DAVIS ``f_measure``.

    Boundaries (``seg2bmap``) of both masks are dilated by a disk of radius
    ``boundary_tolerance(shape, bound_th)``; precision is the fraction of predicted boundary
    pixels inside the dilated ground-truth boundary, recall the reverse, F = 2PR / (P + R).
    Empty boundaries: none predicted and some expected -> P 1, R 0; some predicted and none
    expected -> P 0, R 1; both empty -> P = R = 1 (F 1). Void pixels are cleared from both
    masks before the boundaries are taken.
    """
    pred_mask, gt_mask = pred_mask.astype(bool), gt_mask.astype(bool)
    if void_mask is not None:
        kept = ~void_mask.astype(bool)
        pred_mask, gt_mask = pred_mask & kept, gt_mask & kept
    kernel = disk(boundary_tolerance(gt_mask.shape, bound_th))
    pred_boundary = seg2bmap(pred_mask)
    gt_boundary = seg2bmap(gt_mask)
    pred_dilated = cv2.dilate(pred_boundary.astype(np.uint8), kernel).astype(bool)
    gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)

    num_pred = np.count_nonzero(pred_boundary)
    num_gt = np.count_nonzero(gt_boundary)
    if num_pred == 0 and num_gt > 0:
        precision, recall = 1.0, 0.0
    elif num_pred > 0 and num_gt == 0:
        precision, recall = 0.0, 1.0
    elif num_pred == 0 and num_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = np.count_nonzero(pred_boundary & gt_dilated) / num_pred
        recall = np.count_nonzero(gt_boundary & pred_dilated) / num_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def davis_statistics(per_frame: np.ndarray) -> Tuple[float, float, float]:
    """(Mean, Recall, Decay) of one object's per-frame J or F, as the official ``db_statistics``.

    Mean is the nan-mean; Recall the fraction of frames above 0.5; Decay the mean of the first
    minus the mean of the last of 4 bins whose edges are ``round(linspace(1, n, 5)) - 1`` and
    which include both edges (neighbouring bins share a frame).
    """
    per_frame = np.asarray(per_frame, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=RuntimeWarning)
        mean = float(np.nanmean(per_frame))
        recall = float(np.mean(per_frame > 0.5))
        edges = (np.round(np.linspace(1, len(per_frame), 5) + 1e-10) - 1).astype(np.int64)
        first_bin = per_frame[edges[0]:edges[1] + 1]
        last_bin = per_frame[edges[3]:edges[4] + 1]
        decay = float(np.nanmean(first_bin) - np.nanmean(last_bin))
    return mean, recall, decay


def davis_video_scores(gt_ids: np.ndarray,
                       pred_ids: np.ndarray,
                       object_ids: Sequence[int],
                       bound_th: float = 0.008,
                       exclude_void: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F, each (num_objects, T - 2), of one video.

    ``gt_ids``, ``pred_ids``: (T, H, W) label ids; frames 1..T-2 are scored (the first is given,
    the last is left out, as the official semi-supervised evaluation). Object k's masks are
    ``ids == object_ids[k]``, so void (255) and unknown predicted ids are background for every
    object. The official semi-supervised evaluation passes no void mask (void pixels count as
    background); ``exclude_void`` instead leaves the ground truth's void pixels out of J and F.
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'ground truth {gt_ids.shape} and prediction {pred_ids.shape} differ in shape')
    scored = range(1, len(gt_ids) - 1)
    j_scores = np.zeros((len(object_ids), len(scored)))
    f_scores = np.zeros((len(object_ids), len(scored)))
    for column, t in enumerate(scored):
        void_mask = gt_ids[t] == VOID_ID if exclude_void else None
        for row, object_id in enumerate(object_ids):
            gt_mask, pred_mask = gt_ids[t] == object_id, pred_ids[t] == object_id
            j_scores[row, column] = mask_iou(gt_mask, pred_mask, void_mask)
            f_scores[row, column] = boundary_f_measure(gt_mask, pred_mask, void_mask, bound_th)
    return j_scores, f_scores


def joints_bbox_scale(gt_joints: np.ndarray, visible: np.ndarray) -> float:
    """0.6 x the diagonal of the bounding box of the visible ground-truth joints of one frame.

    ``gt_joints`` (J, 2) x, y; ``visible`` (J,) bool. The PCK reference normaliser.
    """
    points = gt_joints[visible]
    if len(points) == 0:
        return float('nan')
    extent = points.max(axis=0) - points.min(axis=0)
    return 0.6 * float(np.linalg.norm(extent))


def pck_normalized_distances(pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """Per-frame, per-joint distance / (0.6 x joint-box diagonal), NaN where not evaluated.

    ``pred_joints``, ``gt_joints``: (T, J, 2) x, y in original-image pixels. As the UVC / CRW
    ``eval_pck.py``: frame 0 (given) is not evaluated (row 0 is NaN); a joint is evaluated only
    where its prediction exists (finite, x >= 0: the reference writes -1 for a joint whose
    propagated map vanished), and the box is taken over the ground truth of those joints only.
    """
    if pred_joints.shape != gt_joints.shape:
        raise ValueError(f'predicted joints {pred_joints.shape} and ground truth {gt_joints.shape} differ in shape')
    distances = np.full(gt_joints.shape[:2], np.nan)
    with np.errstate(divide='ignore', invalid='ignore'):
        for t in range(1, len(gt_joints)):
            visible = np.isfinite(pred_joints[t]).all(axis=1) & (pred_joints[t, :, 0] >= 0)
            scale = joints_bbox_scale(gt_joints[t], visible)
            normalized = np.linalg.norm(pred_joints[t] - gt_joints[t], axis=1) / scale
            normalized[np.isnan(normalized)] = np.inf  # 0 / 0 (zero-size box): a miss, as in the reference
            distances[t, visible] = normalized[visible]
    return distances


def pck_per_joint(distances: np.ndarray, alpha: float) -> np.ndarray:
    """Fraction (J,) of evaluated entries with normalised distance <= alpha, per joint (column).

    ``distances`` (N, J) from ``pck_normalized_distances`` stacked over frames and videos; NaN
    entries are not evaluated; a joint never evaluated gets NaN.
    """
    evaluated = ~np.isnan(distances)
    correct = evaluated & (np.nan_to_num(distances, nan=np.inf) <= alpha)
    with np.errstate(divide='ignore', invalid='ignore'):
        return correct.sum(axis=0) / evaluated.sum(axis=0)


def confusion_histogram(gt_ids: np.ndarray, pred_ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts (num_classes, num_classes + 1): rows ground truth, columns prediction.

    Pixels whose ground truth is outside [0, num_classes) (e.g. 255) are ignored, as the VIP
    reference does. A prediction outside [0, num_classes) falls into the last column: it is a miss
    for its ground-truth class and belongs to no predicted class (the reference aborts there).
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'ground truth {gt_ids.shape} and prediction {pred_ids.shape} differ in shape')
    gt_ids = gt_ids.astype(np.int64).ravel()
    pred_ids = pred_ids.astype(np.int64).ravel()
    counted = (gt_ids >= 0) & (gt_ids < num_classes)
    gt_ids, pred_ids = gt_ids[counted], pred_ids[counted]
    pred_ids = np.where((pred_ids >= 0) & (pred_ids < num_classes), pred_ids, num_classes)
    flat = np.bincount(gt_ids * (num_classes + 1) + pred_ids, minlength=num_classes * (num_classes + 1))
    return flat.reshape(num_classes, num_classes + 1)


def iou_from_histogram(histogram: np.ndarray) -> np.ndarray:
    """Per-class IoU (C,) from ``confusion_histogram`` counts; NaN for a class absent from both."""
    num_classes = histogram.shape[0]
    true_positive = np.diag(histogram[:, :num_classes]).astype(np.float64)
    gt_pixels = histogram.sum(axis=1)
    pred_pixels = histogram[:, :num_classes].sum(axis=0)
    with np.errstate(divide='ignore', invalid='ignore'):
        return true_positive / (gt_pixels + pred_pixels - true_positive)
