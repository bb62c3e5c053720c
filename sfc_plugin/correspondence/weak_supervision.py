"""Pseudo-labelled semantic pairs from image-level labels only, written in the SPair-71k layout.

Built AFTER THE ABSTRACT of Huang et al., "Weakly Supervised Learning of Semantic Correspondence
through Cascaded Online Correspondence Refinement" (ICCV 2023): with image-level labels only, match
at the image, region and pixel level, filter the pixel matches by masked voting and calibration, keep
keypoints that pass a correspondence consistency check, and release the survivors as keypoint pairs
in the SPair-71k layout to pre-train supervised matchers. Only the abstract is available to us (no
code, no equations): every rule below is this project's own design, not the paper's method.

Input: ``ROOT/<class>/<image>`` (ImageNet's layout: one folder per class). A path containing
``animals/`` is refused (Tux Paint's animal stamps are held out). For every class:

1. Image level: a global descriptor per image (its dense features averaged over the cells, then
   L2-normalised); each image's ``pairs_per_image`` most similar images of its class are its
   candidate partners (pairs counted once, the source being the one first in file-name order).
2. Region level: the cells of either image that are mutual nearest neighbours of a cell of the
   other with a cosine at least the median of those mutual matches; per image, the 8-connected
   component (after a one-cell dilation) holding most of them; a match is kept when both its cells
   lie in their components. The region of each image is the percentile box of its kept cells
   (``region_percentile`` trimmed on each side); both images are cropped to their region widened by
   ``region_margin`` of its sides, upscaled (up to ``MAX_ZOOM`` times) so that the crop's longer
   side is the image's, and their features are extracted again (finer cells on the object).
3. Pixel level: mutual nearest neighbours between the cells of the two crops; the source point is
   the source cell's centre, the target point the target cell's centre moved to the peak of the
   parabola through the cosines of the cell and its two neighbours along each axis (at most half a
   cell); both mapped back to full-image pixels.
4. Calibration and masked voting: the calibrated confidence of a match is Lowe's ratio turned into
   a score, 1 - d_best / d_rival, with d the cosine distance sqrt(2 - 2 cos) to the matched cell and
   to the best cell outside its 3 x 3 neighbourhood, the smaller of the forward and backward one
   (0: a tie, 1: no rival); matches below ``min_confidence`` are dropped. A match votes only when
   both its points lie in the regions (the masks: the boxes before the margin). Its displacement,
   in box-normalised coordinates (each box mapped to the unit square), votes with its confidence in
   a 2-D histogram (``vote_bin`` bins, smoothed 3 x 3); matches within ``vote_radius`` of the
   dominant displacement (the confidence-weighted mean of the votes near the peak) are kept.
5. Correspondence consistency check: for each pair (A, B) the ``third_images`` images C of the
   class most similar to both (largest smaller global similarity) are chosen; a keypoint is kept
   when, for every C, A -> C -> B lands within ``cycle_tolerance`` of the longer side of B's region
   from its A -> B match (A -> C and C -> B are transfers over the region crops of those pairs: the
   best cell, refined as in 3). Pairs with fewer than ``min_keypoints`` keypoints left after any
   stage are dropped; at most ``max_keypoints`` (the most confident) are written.
6. Writer: ``OUT/Layout/large/trn.txt``, ``OUT/PairAnnotation/trn/<line>.json`` (SPair-71k's fields:
   the boxes are the regions, the difficulty flags 0; ``pseudo_label`` records how the pair was
   made), images hard-linked (copied across file systems) to ``OUT/JPEGImages/<class>/``,
   ``OUT/meta.json`` with every setting. Every file is written atomically. The run is resumable:
   ``OUT/progress/<class>.json`` lists the candidate pairs done so far and the pairs written; a
   rerun with the same settings skips them, and its result is identical to an uninterrupted run.

Read the result with ``SPair71kDataset(data_root=OUT, split='trn')``. Limits: same-facing pairs are
assumed (a pair whose objects face opposite ways finds no dominant displacement and is usually
dropped), and the region is whatever two images of a class have in common: a background that many
images of a class share is found as readily as the object.
"""
import math
import os
import re
import shutil
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import scipy.ndimage
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from sfc_plugin.utils import IMAGE_EXTENSIONS, atomic_path, read_image, read_json, write_json
from .cli import load_pair_model
from .datasets import SPAIR_DIFFICULTY
from .matching import FeatureMap
from .model import PairMatchingModel

__all__ = ['MAX_ZOOM', 'WeakSupervisionError', 'WeakPairSettings', 'RegionView', 'RegionPair',
           'list_class_images', 'global_descriptor', 'candidate_pairs', 'third_images', 'co_salient_boxes',
           'crop_region', 'region_matches', 'transfer_points', 'vote_matches', 'consistency_check', 'WeakPairMiner',
           'make_weak_pairs', 'model_from_config']
FORBIDDEN = 'animals/'  # Tux Paint's animal stamps are held out of all semantic-correspondence work
MAX_ZOOM = 4.0  # a region crop is upscaled at most this much
SPLIT = 'trn'
ORIGIN = ('weak supervision after the abstract of Huang et al., ICCV 2023 (image-, region-, pixel-level matching, '
          'masked voting, calibration, consistency check); every rule is this project\'s design')


class WeakSupervisionError(ValueError):
    """The image folder, the output folder or a setting cannot be used; the message names it."""


@dataclass(frozen=True)
class WeakPairSettings:
    """The pipeline's settings (see the module docstring for what each one does)."""
    pairs_per_image: int = 3
    min_keypoints: int = 5
    max_keypoints: int = 30
    region_percentile: float = 5.0
    region_margin: float = 0.1
    min_region_matches: int = 4
    min_confidence: float = 0.2
    vote_bin: float = 0.1
    vote_radius: float = 0.15
    third_images: int = 1
    cycle_tolerance: float = 0.05

    def __post_init__(self) -> None:
        counts = dict(pairs_per_image=self.pairs_per_image, min_keypoints=self.min_keypoints,
                      max_keypoints=self.max_keypoints, min_region_matches=self.min_region_matches,
                      third_images=self.third_images)
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise WeakSupervisionError(f'{name} must be an integer >= 1, got {value!r}')
        if self.max_keypoints < self.min_keypoints:
            raise WeakSupervisionError(f'max_keypoints ({self.max_keypoints}) must be >= min_keypoints '
                                       f'({self.min_keypoints})')
        if not 0 <= self.region_percentile < 50:
            raise WeakSupervisionError(f'region_percentile must be in [0, 50), got {self.region_percentile}')
        if not 0 <= self.min_confidence <= 1:
            raise WeakSupervisionError(f'min_confidence must be in [0, 1], got {self.min_confidence}')
        positive = dict(vote_bin=self.vote_bin, vote_radius=self.vote_radius,
                        cycle_tolerance=self.cycle_tolerance)
        for name, value in positive.items():
            if not value > 0:
                raise WeakSupervisionError(f'{name} must be > 0, got {value}')
        if self.region_margin < 0:
            raise WeakSupervisionError(f'region_margin must be >= 0, got {self.region_margin}')


def _refuse_held_out(path: str) -> None:
    for form in (os.path.abspath(path), os.path.realpath(path)):
        if FORBIDDEN in form + os.sep:
            raise WeakSupervisionError(f'{path}: a path containing {FORBIDDEN!r} is refused (Tux Paint\'s animal '
                                       f'stamps are held out of semantic-correspondence work)')


def list_class_images(root: str) -> Dict[str, List[str]]:
    """``{class: [image paths, sorted]}`` of ``ROOT/<class>/<image>`` (classes sorted; files with an
    ``IMAGE_EXTENSIONS`` suffix, any case). Raises WeakSupervisionError naming the folder when it is
    missing, holds no class folder with images, or a path contains ``animals/``."""
    _refuse_held_out(root)
    if not os.path.isdir(root):
        raise WeakSupervisionError(f'{root}: no such folder (expected ROOT/<class>/<image>.jpg)')
    classes = {}
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if name.startswith('.') or not os.path.isdir(folder):
            continue
        _refuse_held_out(folder)
        images = [os.path.join(folder, file) for file in sorted(os.listdir(folder))
                  if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith('.')
                  and os.path.isfile(os.path.join(folder, file))]
        for path in images:
            _refuse_held_out(path)
        if images:
            classes[name] = images
    if not classes:
        raise WeakSupervisionError(f'{root}: no class folder with images (expected ROOT/<class>/<image> with one of '
                                   f'{", ".join(IMAGE_EXTENSIONS)})')
    return classes


# --- 1. image level ---------------------------------------------------------------------------

def global_descriptor(features: FeatureMap) -> Tensor:
    """(C,) the image's cell features averaged, L2-normalised."""
    return torch.nn.functional.normalize(features.flat().double().mean(dim=1), dim=0)


def candidate_pairs(descriptors: Tensor, k: int) -> List[Tuple[int, int, float]]:
    """(a, b, cosine) with a < b for every image's ``k`` most similar others (ties: lower index
    first), each unordered pair once, sorted by (a, b). ``descriptors`` (N, C), L2-normalised."""
    similarity = (descriptors @ descriptors.T).cpu().numpy()  # (N, N)
    count = len(similarity)
    pairs = set()
    for index in range(count):
        others = [other for other in np.argsort(-similarity[index], kind='stable') if other != index]
        for other in others[:k]:
            pairs.add((min(index, int(other)), max(index, int(other))))
    return [(a, b, float(similarity[a, b])) for a, b in sorted(pairs)]


def third_images(descriptors: Tensor, a: int, b: int, count: int) -> List[int]:
    """The ``count`` images (indices, not a or b) whose smaller cosine to a and to b is largest;
    fewer when the class has fewer."""
    similarity = (descriptors @ descriptors[[a, b]].T).cpu().numpy()  # (N, 2)
    score = similarity.min(axis=1)
    order = [int(index) for index in np.argsort(-score, kind='stable') if index not in (a, b)]
    return order[:count]


# --- 2. region level --------------------------------------------------------------------------

def _mutual_nearest(similarity: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Mutual nearest neighbours of a (Ns, Nt) similarity: source rows, target columns, cosines."""
    forward = similarity.argmax(dim=1)  # (Ns,)
    backward = similarity.argmax(dim=0)  # (Nt,)
    rows = torch.arange(len(similarity), device=similarity.device)
    mutual = backward[forward] == rows
    return rows[mutual], forward[mutual], similarity[rows[mutual], forward[mutual]]


def _in_largest_component(cells: np.ndarray, grid: Tuple[int, int]) -> np.ndarray:
    """(M,) bool: the flat cell indices ``cells`` of an (h, w) grid that lie in the 8-connected
    component (of the cells dilated by one) holding most of them (ties: the first in raster order)."""
    occupied = np.zeros(grid, bool)
    occupied.flat[cells] = True
    labels, count = scipy.ndimage.label(scipy.ndimage.binary_dilation(occupied, np.ones((3, 3), bool)),
                                        np.ones((3, 3), int))
    cell_labels = labels.flat[cells]
    sizes = np.bincount(cell_labels, minlength=count + 1)[1:]
    return cell_labels == int(np.argmax(sizes)) + 1


def _percentile_box(points: np.ndarray, cell_size: Tuple[float, float], percentile: float,
                    image_size: Tuple[int, int]) -> np.ndarray:
    """x1, y1, x2, y2: the ``percentile`` .. 100 - ``percentile`` range of the cell centres ``points``
    (M, 2), widened by half a cell, inside the image."""
    half = np.asarray(cell_size, np.float64) / 2
    low = np.percentile(points, percentile, axis=0) - half
    high = np.percentile(points, 100 - percentile, axis=0) + half
    limit = np.array([image_size[1] - 1, image_size[0] - 1], np.float64)
    return np.concatenate([np.clip(low, 0, limit), np.clip(high, 0, limit)])


def co_salient_boxes(source: FeatureMap, target: FeatureMap, percentile: float = 5.0,
                     min_matches: int = 4) -> Optional[Tuple[np.ndarray, np.ndarray, int]]:
    """The co-salient region of each image (stage 2 of the module docstring): (source box, target
    box, number of matches that made them), boxes x1, y1, x2, y2 in image pixels; None when fewer
    than ``min_matches`` matches remain."""
    similarity = source.flat().T @ target.flat()  # (Ns, Nt)
    rows, columns, cosines = _mutual_nearest(similarity)
    if len(rows) == 0:
        return None
    strong = cosines >= cosines.median()
    rows, columns = rows[strong].cpu().numpy(), columns[strong].cpu().numpy()
    keep = (_in_largest_component(rows, tuple(source.features.shape[1:])) &
            _in_largest_component(columns, tuple(target.features.shape[1:])))
    if keep.sum() < min_matches:
        return None
    src_box = _percentile_box(source.centres().cpu().numpy()[rows[keep]], source.cell_size, percentile,
                              source.image_size)
    trg_box = _percentile_box(target.centres().cpu().numpy()[columns[keep]], target.cell_size, percentile,
                              target.image_size)
    return src_box, trg_box, int(keep.sum())


@dataclass
class RegionView:
    """One image's region: ``box`` (x1, y1, x2, y2, the mask), the crop's top-left pixel ``origin``
    (x, y) and ``zoom`` (x, y: crop-input pixels per image pixel), and the crop's ``features``."""
    box: np.ndarray
    origin: np.ndarray
    zoom: np.ndarray
    features: FeatureMap

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) image pixels -> pixels of the (upscaled) crop."""
        return (points - self.origin + 0.5) * self.zoom - 0.5

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) pixels of the (upscaled) crop -> image pixels."""
        return self.origin + (points + 0.5) / self.zoom - 0.5


@dataclass
class RegionPair:
    """The two :class:`RegionView` of a pair (by image path) and how many matches made the regions."""
    views: Dict[str, RegionView]
    region_matches: int


def crop_region(image: np.ndarray, box: np.ndarray, margin: float, extractor: Callable[[np.ndarray], FeatureMap]
                ) -> RegionView:
    """Crop ``image`` (H, W, 3) to ``box`` widened by ``margin`` of its sides, upscale it (at most
    ``MAX_ZOOM`` times) so that its longer side is the image's, and extract its features."""
    height, width = image.shape[:2]
    span = box[2:] - box[:2]
    x0, y0 = (max(0, math.floor(value)) for value in box[:2] - margin * span)
    x1 = min(width - 1, math.ceil(box[2] + margin * span[0]))
    y1 = min(height - 1, math.ceil(box[3] + margin * span[1]))
    crop = image[y0:y1 + 1, x0:x1 + 1]
    scale = min(MAX_ZOOM, max(1.0, max(height, width) / max(crop.shape[:2])))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))  # (w, h)
    if size != (crop.shape[1], crop.shape[0]):
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
    zoom = np.array([size[0] / (x1 + 1 - x0), size[1] / (y1 + 1 - y0)], np.float64)
    return RegionView(np.asarray(box, np.float64), np.array([x0, y0], np.float64), zoom,
                      extractor(np.ascontiguousarray(crop)))


# --- 3. pixel level ---------------------------------------------------------------------------

def _valid_cells(features: FeatureMap) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cells whose centre lies in the image: (N,) flat indices, (N, 2) row, column, (N, 2) centres,
    and the (h, w) map of each cell's position in that list (-1: not listed)."""
    height, width = features.image_size
    centres = features.centres()
    inside = (centres[:, 0] <= width - 1) & (centres[:, 1] <= height - 1)
    index = torch.nonzero(inside)[:, 0]
    rows, columns = features.features.shape[1:]
    grid = torch.stack([index // columns, index % columns], dim=1)
    lookup = torch.full((rows * columns,), -1, dtype=torch.long, device=index.device)
    lookup[index] = torch.arange(len(index), device=index.device)
    return index, grid, centres[index], lookup.view(rows, columns)


def _subcell_peak(similarity: Tensor, best: Tensor, grid: Tensor, lookup: Tensor, centres: Tensor,
                  cell_size: Tuple[float, float]) -> Tensor:
    """(K, 2) the best cells' centres, each moved to the peak of the parabola through the similarity
    at the cell and its two neighbours along x, then along y (at most half a cell; not at a border)."""
    rows, columns = grid[best].unbind(dim=1)
    height, width = lookup.shape
    peak = centres[best].double().clone()
    at_best = similarity.gather(1, best[:, None])[:, 0].double()
    for axis, (step_row, step_column) in enumerate(((0, 1), (1, 0))):  # x moves along columns
        neighbours = []
        for sign in (-1, 1):
            row, column = rows + sign * step_row, columns + sign * step_column
            inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
            cell = torch.where(inside, lookup[row.clamp(0, height - 1), column.clamp(0, width - 1)], -1)
            neighbours.append((cell, similarity.gather(1, cell.clamp(min=0)[:, None])[:, 0].double()))
        (before, s_before), (after, s_after) = neighbours
        curvature = s_before - 2 * at_best + s_after
        usable = (before >= 0) & (after >= 0) & (curvature < 0)
        shift = torch.where(usable, 0.5 * (s_before - s_after) / torch.where(usable, curvature, -1.0), 0.0)
        peak[:, axis] += shift.clamp(-0.5, 0.5) * cell_size[axis]
    return peak


def _ratio_confidence(similarity: Tensor, best: Tensor, grid: Tensor) -> Tensor:
    """(K,) 1 - d_best / d_second: the cosine distance (sqrt(2 - 2 cos)) to each row's best cell over
    that to its best cell outside the best's 3 x 3 neighbourhood (Lowe's ratio, turned into a
    confidence: 0 for a tie, 1 for an unrivalled match); 1 when no other cell exists."""
    distance = (2 - 2 * similarity.double()).clamp(min=0).sqrt()  # (K, N)
    rival = distance.masked_fill(_neighbourhood(grid, best), float('inf')).min(dim=1).values
    nearest = distance.gather(1, best[:, None])[:, 0]
    return torch.where(torch.isfinite(rival), 1 - nearest / rival.clamp(min=1e-12), torch.ones_like(nearest))


def _neighbourhood(grid: Tensor, best: Tensor) -> Tensor:
    """(K, N) bool: the cells within one row and column of each best cell (``grid`` (N, 2))."""
    return ((grid[None] - grid[best][:, None]).abs() <= 1).all(dim=-1)


def region_matches(source: RegionView, target: RegionView) -> Dict[str, np.ndarray]:
    """Mutual nearest neighbours between the cells of two region crops (stage 3) with their
    calibrated confidence (stage 4): ``src_points``, ``trg_points`` (K, 2) image pixels, ``cosine``
    and ``confidence`` (K,)."""
    src_index, src_grid, src_centres, _ = _valid_cells(source.features)
    trg_index, trg_grid, trg_centres, trg_lookup = _valid_cells(target.features)
    similarity = source.features.flat()[:, src_index].T @ target.features.flat()[:, trg_index]  # (Ns, Nt)
    rows, columns, cosines = _mutual_nearest(similarity)
    confidence = torch.minimum(_ratio_confidence(similarity[rows], columns, trg_grid),
                               _ratio_confidence(similarity[:, columns].T, rows, src_grid))
    peaks = _subcell_peak(similarity[rows], columns, trg_grid, trg_lookup, trg_centres, target.features.cell_size)
    return dict(src_points=source.to_image(src_centres[rows].double().cpu().numpy()),
                trg_points=target.to_image(peaks.cpu().numpy()),
                cosine=cosines.double().cpu().numpy(), confidence=confidence.cpu().numpy())


def transfer_points(source: RegionView, target: RegionView, points: np.ndarray) -> np.ndarray:
    """(K, 2) image pixels of the source -> the target's image pixels: the best target crop cell
    refined as in stage 3; NaN for points outside the source crop."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    moved = np.full_like(points, np.nan)
    crop_points = source.to_crop(points)
    height, width = source.features.image_size
    inside = ((crop_points >= -0.5) & (crop_points <= np.array([width - 0.5, height - 0.5]))).all(axis=1)
    if not inside.any():
        return moved
    trg_index, trg_grid, trg_centres, trg_lookup = _valid_cells(target.features)
    sampled = source.features.sample(torch.as_tensor(crop_points[inside], device=source.features.features.device))
    similarity = sampled @ target.features.flat()[:, trg_index]  # (K, Nt)
    peaks = _subcell_peak(similarity, similarity.argmax(dim=1), trg_grid, trg_lookup, trg_centres,
                          target.features.cell_size)
    moved[inside] = target.to_image(peaks.cpu().numpy())
    return moved


# --- 4. masked voting -------------------------------------------------------------------------

def _inside(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    return ((points >= box[:2]) & (points <= box[2:])).all(axis=1)


def vote_matches(src_points: np.ndarray, trg_points: np.ndarray, weights: np.ndarray, src_box: np.ndarray,
                 trg_box: np.ndarray, bin_size: float = 0.1, radius: float = 0.15) -> Tuple[np.ndarray, np.ndarray]:
    """Masked Hough voting over the matches' displacement in box-normalised coordinates (stage 4).

    Args:
        src_points, trg_points: (K, 2) image pixels of the matches; weights: (K,) votes (>= 0).
        src_box, trg_box: x1, y1, x2, y2 masks; only matches with both points inside vote.
        bin_size: histogram bin side over displacements in [-1, 1]^2 (box sides are 1).
        radius: a match is kept within this distance of the dominant displacement.
    Returns:
        (K,) bool kept, and the dominant displacement (2,) (NaN when nothing voted).
    """
    src_rel = (src_points - src_box[:2]) / np.maximum(src_box[2:] - src_box[:2], 1e-9)
    trg_rel = (trg_points - trg_box[:2]) / np.maximum(trg_box[2:] - trg_box[:2], 1e-9)
    displacement = trg_rel - src_rel  # (K, 2)
    voting = _inside(src_points, src_box) & _inside(trg_points, trg_box) & (weights > 0)
    if not voting.any():
        return np.zeros(len(src_points), bool), np.full(2, np.nan)
    bins = max(1, round(2 / bin_size))
    histogram, _, _ = np.histogram2d(displacement[voting, 0], displacement[voting, 1], bins,
                                     range=[[-1, 1], [-1, 1]], weights=weights[voting])
    smooth = scipy.ndimage.convolve(histogram, np.outer([1, 2, 1], [1, 2, 1]) / 16.0, mode='constant')
    peak = np.array(np.unravel_index(int(np.argmax(smooth)), smooth.shape), np.float64)
    centre = -1 + (peak + 0.5) * (2 / bins)
    near = voting & (np.linalg.norm(displacement - centre, axis=1) <= radius)
    offset = (np.average(displacement[near], axis=0, weights=weights[near]) if near.any() else centre)
    return voting & (np.linalg.norm(displacement - offset, axis=1) <= radius), offset


# --- 5. consistency check ---------------------------------------------------------------------

def consistency_check(src_points: np.ndarray, trg_points: np.ndarray,
                      paths: Sequence[Tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]],
                      tolerance: float) -> Tuple[np.ndarray, np.ndarray]:
    """Keep a match A -> B when, through every third image C, A -> C -> B lands within ``tolerance``
    pixels of its B point (stage 5).

    Args:
        src_points, trg_points: (K, 2) the matches' A and B pixels.
        paths: for each C the maps (A -> C, C -> B), each (K, 2) pixels -> (K, 2) pixels (NaN: none).
        tolerance: largest distance in B's pixels.
    Returns:
        (K,) bool kept and (K,) the largest distance over the paths (inf where a map gave none).
    """
    errors = np.zeros(len(src_points))
    for to_third, to_target in paths:
        around = to_target(to_third(src_points))
        distance = np.linalg.norm(around - trg_points, axis=1)
        errors = np.maximum(errors, np.where(np.isfinite(distance), distance, np.inf))
    return errors <= tolerance, errors


# --- the pipeline -----------------------------------------------------------------------------

class WeakPairMiner:
    """Stages 2-5 for pairs of one class: ``model`` gives the full-image features (its cached
    ``features(path)``) and the crop features (its ``extractor``)."""

    def __init__(self, model: PairMatchingModel, settings: WeakPairSettings, cache_size: int = 256) -> None:
        self.model = model
        self.settings = settings
        self.cache_size = cache_size
        self._regions: 'OrderedDict[Tuple[str, str], Optional[RegionPair]]' = OrderedDict()

    def clear(self) -> None:
        """Forget the cached region pairs (between classes)."""
        self._regions.clear()

    def region_pair(self, path_a: str, path_b: str) -> Optional[RegionPair]:
        """The regions and crop features of two images (cached, either order); None: no co-salient region."""
        key = tuple(sorted((path_a, path_b)))
        if key in self._regions:
            self._regions.move_to_end(key)
            return self._regions[key]
        first, second = key
        boxes = co_salient_boxes(self.model.features(first), self.model.features(second),
                                 self.settings.region_percentile, self.settings.min_region_matches)
        pair = None
        if boxes is not None:
            views = {path: crop_region(read_image(path), box, self.settings.region_margin, self.model.extractor)
                     for path, box in zip(key, boxes[:2])}
            pair = RegionPair(views, boxes[2])
        self._regions[key] = pair
        while len(self._regions) > self.cache_size:
            self._regions.popitem(last=False)
        return pair

    def transfer(self, path_x: str, path_y: str, points: np.ndarray) -> np.ndarray:
        """(K, 2) pixels of image X -> pixels of image Y over their region crops (NaN: none)."""
        pair = self.region_pair(path_x, path_y)
        if pair is None:
            return np.full((len(points), 2), np.nan)
        return transfer_points(pair.views[path_x], pair.views[path_y], points)

    def mine(self, path_a: str, path_b: str, thirds: Sequence[str]) -> dict:
        """Keypoints of the pair A -> B: ``src_kps``, ``trg_kps`` (K, 2), ``src_box``, ``trg_box``, the
        ``pseudo_label`` record, and ``dropped_at`` (the stage that left fewer than ``min_keypoints``:
        'region', 'calibration', 'voting' or 'consistency'; None when the pair survives), ``counts``
        (matches left after each stage)."""
        settings = self.settings
        counts: Dict[str, int] = {}
        result = dict(dropped_at=None, counts=counts)
        pair = self.region_pair(path_a, path_b)
        counts['region_matches'] = pair.region_matches if pair is not None else 0
        if pair is None:
            return dict(result, dropped_at='region')
        source, target = pair.views[path_a], pair.views[path_b]
        matches = region_matches(source, target)
        counts['pixel_matches'] = len(matches['src_points'])
        calibrated = matches['confidence'] >= settings.min_confidence
        counts['calibrated'] = int(calibrated.sum())
        if calibrated.sum() < settings.min_keypoints:
            return dict(result, dropped_at='calibration')
        kept, offset = vote_matches(matches['src_points'], matches['trg_points'],
                                    np.where(calibrated, matches['confidence'], 0.0), source.box, target.box,
                                    settings.vote_bin, settings.vote_radius)
        counts['voted'] = int(kept.sum())
        if kept.sum() < settings.min_keypoints:
            return dict(result, dropped_at='voting')
        if len(thirds) < settings.third_images:
            return dict(result, dropped_at='consistency')
        src_points, trg_points = matches['src_points'][kept], matches['trg_points'][kept]
        paths = [(lambda points, third=third: self.transfer(path_a, third, points),
                  lambda points, third=third: self.transfer(third, path_b, points)) for third in thirds]
        tolerance = settings.cycle_tolerance * float((target.box[2:] - target.box[:2]).max())
        consistent, errors = consistency_check(src_points, trg_points, paths, tolerance)
        counts['consistent'] = int(consistent.sum())
        if consistent.sum() < settings.min_keypoints:
            return dict(result, dropped_at='consistency')
        confidence = matches['confidence'][kept][consistent]
        order = np.argsort(-confidence, kind='stable')[:settings.max_keypoints]
        chosen = {name: values[kept][consistent][order] for name, values in matches.items()}
        pseudo_label = dict(
            origin=ORIGIN, third_images=[os.path.basename(path) for path in thirds], **counts,
            vote_displacement=[round(float(value), 4) for value in offset],
            cycle_tolerance_px=round(tolerance, 3),
            confidence=np.round(chosen['confidence'], 4).tolist(), cosine=np.round(chosen['cosine'], 4).tolist(),
            cycle_error_px=np.round(errors[consistent][order], 3).tolist())
        return dict(result, src_kps=chosen['src_points'], trg_kps=chosen['trg_points'], src_box=source.box,
                    trg_box=target.box, pseudo_label=pseudo_label)


def _safe(name: str) -> str:
    """A file stem usable inside a SPair layout line (no '-' or ':')."""
    return re.sub(r'[^A-Za-z0-9_.]', '_', os.path.splitext(name)[0])


def _link_image(source: str, destination: str) -> None:
    """Hard-link ``source`` to ``destination`` (a copy across file systems); the name appears only
    when the file is whole."""
    if os.path.exists(destination):
        return
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    tmp = f'{destination}.{os.getpid()}.tmp'
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def _pair_record(number: int, category: str, path_a: str, path_b: str, mined: dict) -> dict:
    sizes = []
    for path in (path_a, path_b):
        with Image.open(path) as image:
            sizes.append(image.size)  # (W, H)
    return dict(pair_id=number, src_imname=os.path.basename(path_a), trg_imname=os.path.basename(path_b),
                category=category, src_imsize=[*sizes[0], 3], trg_imsize=[*sizes[1], 3],
                src_bndbox=[int(math.floor(v)) for v in mined['src_box'][:2]] +
                           [int(math.ceil(v)) for v in mined['src_box'][2:]],
                trg_bndbox=[int(math.floor(v)) for v in mined['trg_box'][:2]] +
                           [int(math.ceil(v)) for v in mined['trg_box'][2:]],
                src_kps=np.round(mined['src_kps'], 2).tolist(), trg_kps=np.round(mined['trg_kps'], 2).tolist(),
                kps_ids=[str(index) for index in range(len(mined['src_kps']))],
                **{flag: 0 for flag in SPAIR_DIFFICULTY}, pseudo_label=mined['pseudo_label'])


def _describe_model(model: PairMatchingModel) -> dict:
    extractor = model.extractor
    return dict(backbone=type(model.backbone).__name__, layers=extractor.layers, max_side=extractor.max_side,
                input_size=list(extractor.input_size) if extractor.input_size else None,
                feature_stride=extractor.feature_stride, hyperpixels=extractor.hyperpixels)


def _start_output(out: str, root: str, settings_record: dict) -> None:
    """Create ``out`` or check that it holds a run with the same settings (to resume)."""
    root_real, out_real = os.path.realpath(root), os.path.realpath(out)
    if out_real == root_real or out_real.startswith(root_real + os.sep):
        raise WeakSupervisionError(f'{out}: the output folder must not lie inside the image folder {root}')
    settings_path = os.path.join(out, 'progress', 'settings.json')
    if os.path.exists(settings_path):
        stored = read_json(settings_path, WeakSupervisionError, 'settings of the earlier run not found')
        if stored != settings_record:
            changed = sorted(key for key in set(stored) | set(settings_record)
                             if stored.get(key) != settings_record.get(key))
            raise WeakSupervisionError(f'{out}: holds a run with other settings ({", ".join(changed)} differ); give '
                                       f'another output folder, or delete this one to start again')
        return
    if os.path.isdir(out) and os.listdir(out):
        raise WeakSupervisionError(f'{out}: not empty and not a weak-pairs run (no progress/settings.json); give an '
                                   f'empty or new folder')
    write_json(settings_path, settings_record)


def _write_index(out: str, classes: Sequence[str], settings_record: dict) -> dict:
    """Layout/large/trn.txt and meta.json from the progress files of ``classes``; returns meta."""
    lines, per_class, finished = [], {}, True
    for name in classes:
        path = os.path.join(out, 'progress', f'{name}.json')
        progress = read_json(path, WeakSupervisionError, 'progress file not found') if os.path.exists(path) else None
        if progress is None or not progress['finished']:
            finished = False
        if progress is not None:
            lines += progress['lines']
            per_class[name] = dict(images=progress['images'], candidate_pairs=progress['candidates'],
                                   pairs_done=len(progress['done']), pairs=len(progress['lines']),
                                   keypoints=progress['keypoints'], dropped_at=progress['dropped_at'])
    with atomic_path(os.path.join(out, 'Layout', 'large', f'{SPLIT}.txt')) as tmp:
        with open(tmp, 'w') as file:
            file.write(''.join(line + '\n' for line in lines))
    meta = dict(kind='pseudo-labelled semantic pairs from image-level labels', method=ORIGIN, split=SPLIT,
                finished=finished, pairs=len(lines), keypoints=sum(entry['keypoints'] for entry in per_class.values()),
                classes=per_class, settings=settings_record)
    write_json(os.path.join(out, 'meta.json'), meta)
    return meta


def make_weak_pairs(root: str, out: str, model: PairMatchingModel, settings: Optional[WeakPairSettings] = None,
                    model_description: Optional[dict] = None, progress: bool = True,
                    max_pairs: Optional[int] = None) -> dict:
    """Run the pipeline (module docstring) over ``root``'s class folders and write the pairs under ``out``.

    Args:
        root: ``ROOT/<class>/<image>``.
        out: output folder (new, empty, or a run of the same settings to resume).
        model: gives the features (e.g. from ``model_from_config``); put it in eval mode.
        settings: the pipeline's settings (default ``WeakPairSettings()``).
        model_description: what made the model (config, checkpoint), recorded with the settings;
            default: the backbone's type and the feature settings.
        progress: show a progress bar over the pairs (on stderr).
        max_pairs: stop after this many candidate pairs done in this call (a rerun resumes).
    Returns:
        The ``meta.json`` dict (``finished`` False when ``max_pairs`` stopped it).
    """
    settings = settings or WeakPairSettings()
    classes = list_class_images(root)
    settings_record = dict(root=os.path.abspath(root), model=model_description or _describe_model(model),
                           **asdict(settings))
    _start_output(out, root, settings_record)
    miner = WeakPairMiner(model, settings)
    budget = math.inf if max_pairs is None else max_pairs
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, console=Console(stderr=True)) as bar:
        class_task = bar.add_task('classes', total=len(classes))
        pair_task = bar.add_task('pairs', total=0)
        numbered = 0  # pairs written by the classes before this one
        for category, paths in classes.items():
            progress_path = os.path.join(out, 'progress', f'{category}.json')
            state = (read_json(progress_path, WeakSupervisionError, 'progress file not found')
                     if os.path.exists(progress_path) else None)
            if state is None or not state['finished']:
                if budget <= 0:
                    break
                miner.clear()
                state, used = _run_class(out, category, paths, state, miner, numbered, budget,
                                         lambda total, done, name=category: bar.reset(
                                             pair_task, total=total, completed=done, description=f'pairs of {name}'),
                                         lambda: bar.advance(pair_task))
                budget -= used
                _write_index(out, list(classes), settings_record)
            numbered += len(state['lines'])
            if state['finished']:
                bar.advance(class_task)
    return _write_index(out, list(classes), settings_record)


def _run_class(out: str, category: str, paths: List[str], state: Optional[dict], miner: WeakPairMiner,
               numbered: int, budget: float, start_bar: Callable[[int, int], None],
               advance_bar: Callable[[], None]) -> Tuple[dict, int]:
    """Stages 1-6 for one class, skipping the candidate pairs ``state`` (its progress record, None:
    none yet) lists as done, for at most ``budget`` pairs; pairs are numbered after ``numbered``.
    Returns the class's progress record and the number of pairs done in this call."""
    settings = miner.settings
    progress_path = os.path.join(out, 'progress', f'{category}.json')
    descriptors = torch.stack([global_descriptor(miner.model.features(path)) for path in paths])  # (N, C)
    candidates = candidate_pairs(descriptors, min(settings.pairs_per_image, len(paths) - 1))
    if state is None:
        state = dict(images=len(paths), candidates=len(candidates), done=[], lines=[], keypoints=0, dropped_at={},
                     finished=False)
    done = set(state['done'])
    start_bar(len(candidates), len(done))
    used = 0
    for a, b, similarity in candidates:
        key = f'{os.path.basename(paths[a])}|{os.path.basename(paths[b])}'
        if key in done:
            continue
        if used >= budget:
            break
        thirds = [paths[index] for index in third_images(descriptors, a, b, settings.third_images)]
        mined = miner.mine(paths[a], paths[b], thirds)
        if mined['dropped_at'] is None:
            number = numbered + len(state['lines']) + 1
            mined['pseudo_label'] = dict(global_similarity=round(similarity, 4), **mined['pseudo_label'])
            line = f'{number:06d}-{_safe(os.path.basename(paths[a]))}-{_safe(os.path.basename(paths[b]))}:{category}'
            for path in (paths[a], paths[b]):
                _link_image(path, os.path.join(out, 'JPEGImages', category, os.path.basename(path)))
            write_json(os.path.join(out, 'PairAnnotation', SPLIT, f'{line}.json'),
                       _pair_record(number, category, paths[a], paths[b], mined))
            state['lines'].append(line)
            state['keypoints'] += len(mined['src_kps'])
        else:
            state['dropped_at'][mined['dropped_at']] = state['dropped_at'].get(mined['dropped_at'], 0) + 1
        state['done'].append(key)
        write_json(progress_path, state)  # after the pair's files: a pair listed as done is whole
        used += 1
        advance_bar()
    state['finished'] = len(state['done']) == len(candidates)
    write_json(progress_path, state)
    return state, used


def model_from_config(config: Optional[str] = None, checkpoint: Optional[str] = None, device: str = 'cpu',
                      max_side: Optional[int] = None, layers: Optional[Sequence[str]] = None) -> PairMatchingModel:
    """The pair model of ``config`` (default: the built-in semantic pair model), built as ``sfc-match``
    builds it; ``max_side`` and ``layers`` override the config's feature settings."""
    return load_pair_model(config, checkpoint, None, device, dict(max_side=max_side, layers=layers))
