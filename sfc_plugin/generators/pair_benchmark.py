"""A benchmark of real image pairs with exact correspondences, written in the SPair-71k layout.

None of SPair-71k, PF-PASCAL or PF-WILLOW installs offline, so this benchmark is made from what does.
It measures *geometric* correspondence (the same scene or object, seen warped or from another
viewpoint), not *semantic* correspondence (two different instances of a category), which those
benchmarks measure.

Pairs:

- warps of real photos (scikit-image's ``skimage.data``): the target is the photo seen through a
  random homography (``homography``), or a homography composed with a smooth thin-plate-spline
  deformation (``tps``), with a photometric change (gain, bias, per-channel gain, gamma, noise) and
  an occluder (a rectangle of another photo) in the target;
- real pairs shipped with ground truth: scikit-image's ``stereo_motorcycle`` (rectified stereo,
  ground-truth disparity; points occluded in the right view are left out), and, when an unpacked
  Debian ``opencv-doc`` data folder is given, ``graf1``/``graf3`` with the homography ``H1to3p.xml``
  and the ``aloeL``/``aloeR`` stereo pair with its disparity ``aloeGT.png``.

Every image is first resized so that its longer side is ``max_side`` pixels. Keypoints are corners
(``cv2.goodFeaturesToTrack``) of the target that are visible in both images (inside the warped
photo, off the occluder); their source position is the exact inverse of the warp. Keypoints and
boxes are 0-based pixels; a photo's box is the whole source image and, in the target, the box of
the part of the warped photo inside the frame. Difficulty flags follow SPair-71k: viewpoint
variation from the homography's perspective part, scale variation from its scale, truncation 2
(target) when part of the warped photo leaves the frame, occlusion 2 (target) when an occluder is
pasted. Everything is drawn from ``numpy.random.default_rng([seed, pair_index])`` and recorded in
``meta.json``.
"""
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from sfc_plugin.utils import atomic_folder, write_json

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry', 'retina', 'clock')
OPENCV_DOC_FILES = ('graf1.png', 'graf3.png', 'H1to3p.xml', 'aloeL.jpg', 'aloeR.jpg', 'aloeGT.png')
JPEG_QUALITY = 95
SPLIT = 'test'
REAL_PAIRS = ('stereo_motorcycle', 'graf', 'aloe')  # categories of the real (not synthesised) pairs

PointMap = Callable[[np.ndarray], np.ndarray]  # (N, 2) target x, y -> (N, 2) source x, y


def _photo(name: str) -> np.ndarray:
    from .offline_data import skimage_photo
    return skimage_photo(name)


def _resize_max_side(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    """Image resized so that its longer side is ``max_side``, and the scale factor."""
    scale = max_side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), scale


def _scale_points(points: np.ndarray, scale: float) -> np.ndarray:
    """0-based pixel coordinates of an image resized by ``scale`` (pixel centres kept)."""
    return (points + 0.5) * scale - 0.5


def _apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    projected = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ matrix.T
    return projected[:, :2] / projected[:, 2:]


def random_homography(rng: np.random.Generator, size: Tuple[int, int], strength: float) -> Tuple[np.ndarray, dict]:
    """Source -> target homography of an (H, W) image: rotation, scale, shift and corner jitter.

    Returns the 3x3 matrix and its parameters (``scale``, ``perspective``: mean corner jitter as a
    fraction of the image size).
    """
    height, width = size
    angle = rng.uniform(-20, 20) * strength
    scale = float(np.exp(rng.uniform(-0.35, 0.35) * strength))
    centre = np.array([width / 2, height / 2])
    similarity = cv2.getRotationMatrix2D(tuple(centre), angle, scale)
    similarity[:, 2] += rng.uniform(-0.08, 0.08, 2) * np.array([width, height]) * strength
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    moved = corners @ similarity[:, :2].T + similarity[:, 2]
    jitter = rng.uniform(-0.12, 0.12, (4, 2)) * np.array([width, height]) * strength
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), (moved + jitter).astype(np.float32))
    perspective = float(np.abs(jitter / np.array([width, height])).mean())
    return matrix, dict(angle=float(angle), scale=scale, perspective=perspective)


class ThinPlateSpline:
    """2-D thin-plate spline through ``control`` (N, 2) -> ``values`` (N, 2), evaluated exactly."""

    def __init__(self, control: np.ndarray, values: np.ndarray) -> None:
        count = len(control)
        kernel = self._kernel(control, control)
        affine = np.concatenate([np.ones((count, 1)), control], axis=1)  # (N, 3)
        system = np.zeros((count + 3, count + 3))
        system[:count, :count], system[:count, count:], system[count:, :count] = kernel, affine, affine.T
        rhs = np.zeros((count + 3, 2))
        rhs[:count] = values
        self.control = control
        self.coefficients = np.linalg.solve(system, rhs)  # (N + 3, 2)

    @staticmethod
    def _kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        squared = ((a[:, None] - b[None]) ** 2).sum(-1)
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(squared > 0, squared * np.log(squared) / 2, 0.0)  # r^2 log r

    def __call__(self, points: np.ndarray) -> np.ndarray:
        count = len(self.control)
        kernel = self._kernel(points, self.control)
        affine = np.concatenate([np.ones((len(points), 1)), points], axis=1)
        return kernel @ self.coefficients[:count] + affine @ self.coefficients[count:]


def random_tps(rng: np.random.Generator, size: Tuple[int, int], amplitude: float = 0.04) -> ThinPlateSpline:
    """A smooth target -> target deformation: a 4 x 4 grid of control points moved by up to
    ``amplitude`` of the image size (the border row and column too)."""
    height, width = size
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 4), np.linspace(0, height - 1, 4))
    control = np.stack([xs.ravel(), ys.ravel()], axis=1)
    moved = control + rng.uniform(-amplitude, amplitude, control.shape) * np.array([width, height])
    return ThinPlateSpline(control, moved)


def render(source: np.ndarray, point_map: PointMap, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Target image of ``size`` whose pixel p shows ``source`` at ``point_map(p)``, and the mask of
    target pixels that land inside the source."""
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width]
    mapped = point_map(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    map_x = mapped[:, 0].reshape(height, width).astype(np.float32)
    map_y = mapped[:, 1].reshape(height, width).astype(np.float32)
    image = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = (map_x >= 0) & (map_x <= source.shape[1] - 1) & (map_y >= 0) & (map_y <= source.shape[0] - 1)
    return image, inside


def photometric_change(rng: np.random.Generator, image: np.ndarray) -> Tuple[np.ndarray, dict]:
    """Gain, bias, per-channel gain, gamma and Gaussian noise; returns the image and the parameters."""
    gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-25, 25)
    channel_gain = rng.uniform(0.9, 1.1, 3)
    gamma, noise = rng.uniform(0.8, 1.25), rng.uniform(1, 4)
    value = image.astype(np.float64) * gain * channel_gain + bias
    value = 255 * (np.clip(value, 0, 255) / 255) ** gamma + rng.normal(0, noise, image.shape)
    params = dict(gain=float(gain), bias=float(bias), channel_gain=channel_gain.round(4).tolist(),
                  gamma=float(gamma), noise_std=float(noise))
    return np.clip(value, 0, 255).round().astype(np.uint8), params


def paste_occluder(rng: np.random.Generator, image: np.ndarray, occluder_source: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray, list]:
    """Cover a random rectangle (8-20% of the image) with a region of another photo.

    Returns the image, the (H, W) bool mask of covered pixels and the box [x1, y1, x2, y2].
    """
    height, width = image.shape[:2]
    area = rng.uniform(0.08, 0.2) * height * width
    aspect = rng.uniform(0.6, 1.6)
    box_w = int(min(width - 2, max(8, round(np.sqrt(area * aspect)))))
    box_h = int(min(height - 2, max(8, round(area / box_w))))
    x1, y1 = int(rng.integers(0, width - box_w)), int(rng.integers(0, height - box_h))
    patch = cv2.resize(occluder_source, (max(box_w, occluder_source.shape[1] // 2),
                                         max(box_h, occluder_source.shape[0] // 2)), interpolation=cv2.INTER_AREA)
    px, py = int(rng.integers(0, patch.shape[1] - box_w + 1)), int(rng.integers(0, patch.shape[0] - box_h + 1))
    image = image.copy()
    image[y1:y1 + box_h, x1:x1 + box_w] = patch[py:py + box_h, px:px + box_w]
    mask = np.zeros((height, width), bool)
    mask[y1:y1 + box_h, x1:x1 + box_w] = True
    return image, mask, [x1, y1, x1 + box_w - 1, y1 + box_h - 1]


def pick_keypoints(rng: np.random.Generator, image: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` corners (N, 2) x, y of ``image`` inside the ``allowed`` mask, at least 8 px apart,
    drawn at random among the 6 * count strongest."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    mask = cv2.erode(allowed.astype(np.uint8), np.ones((9, 9), np.uint8))  # keep clear of the mask's edge
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=6 * count, qualityLevel=0.01, minDistance=8, mask=mask)
    if corners is None:
        return np.zeros((0, 2))
    corners = corners.reshape(-1, 2).astype(np.float64)
    chosen = rng.choice(len(corners), size=min(count, len(corners)), replace=False)
    return corners[np.sort(chosen)]


def _box(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _level(value: float, small: float, large: float) -> int:
    return 0 if value < small else 1 if value < large else 2


def warp_pair(rng: np.random.Generator, photo: np.ndarray, occluder: np.ndarray, kind: str, count: int,
              photometric: bool = True) -> dict:
    """A (source, target) pair of ``photo`` warped by a homography (``kind='homography'``) or a
    homography and a thin-plate spline (``'tps'``), with the exact keypoints and the pair's record;
    ``photometric=False`` leaves out the photometric change (the other draws then differ)."""
    size = photo.shape[:2]
    matrix, params = random_homography(rng, size, strength=1.0 if kind == 'homography' else 0.6)
    inverse = np.linalg.inv(matrix)
    if kind == 'tps':
        spline = random_tps(rng, size)
        point_map = lambda points: _apply_homography(inverse, spline(points))  # noqa: E731
    else:
        point_map = lambda points: _apply_homography(inverse, points)  # noqa: E731
    target, inside = render(photo, point_map, size)
    change = {}
    if photometric:
        target, change = photometric_change(rng, target)
    target[~inside] = 0
    target, occluded, occluder_box = paste_occluder(rng, target, occluder)
    trg_kps = pick_keypoints(rng, target, inside & ~occluded, count)
    src_kps = point_map(trg_kps)
    truncated = not _covers_source(point_map, size, inside)
    record = dict(
        src_bndbox=_box(np.ones(size, bool)), trg_bndbox=_box(inside),
        viewpoint_variation=_level(params['perspective'], 0.03, 0.06),
        scale_variation=_level(abs(np.log2(params['scale'])), 0.15, 0.35),
        truncation=2 if truncated else 0, occlusion=2,
        warp=dict(kind=kind, homography=matrix.round(8).tolist(), **params),
        photometric=change, occluder_box=occluder_box)
    return dict(source=photo, target=target, src_kps=src_kps, trg_kps=trg_kps, record=record)


def _covers_source(point_map: PointMap, size: Tuple[int, int], inside: np.ndarray) -> bool:
    """Whether the whole source photo appears in the target (no truncation): the source's area that
    the target shows is (almost) all of it."""
    height, width = size
    shown = point_map(np.stack(np.nonzero(inside)[::-1], axis=1).astype(np.float64))
    hist = np.zeros((16, 16), bool)
    cells = np.clip((shown / np.array([width, height]) * 16).astype(int), 0, 15)
    hist[cells[:, 1], cells[:, 0]] = True
    return bool(hist.all())


def stereo_pair(rng: np.random.Generator, left: np.ndarray, right: np.ndarray, disparity: np.ndarray,
                max_side: int, count: int) -> dict:
    """A rectified stereo pair with the left view's disparity: left (x, y) matches right (x - d, y).

    Points with unknown disparity, a match outside the right image or occluded in the right view
    (a left point of larger disparity lands within a pixel of the same right position) are left out.
    """
    disparity = np.where(np.isfinite(disparity) & (disparity > 0), disparity, np.nan).astype(np.float64)
    height, width = disparity.shape
    xs = np.arange(width)[None].repeat(height, 0).astype(np.float64)
    target_x = xs - disparity
    visible = np.isfinite(target_x) & (target_x >= 0)
    for row in range(height):  # occlusion: a nearer left point (larger disparity) takes the right pixel first
        columns = np.nonzero(visible[row])[0]
        columns = columns[np.argsort(-disparity[row, columns], kind='stable')]
        _, first = np.unique(np.round(target_x[row, columns]).astype(int), return_index=True)
        hidden = np.ones(len(columns), bool)
        hidden[first] = False
        visible[row, columns[hidden]] = False
    left_small, scale = _resize_max_side(left, max_side)
    right_small, _ = _resize_max_side(right, max_side)
    # Choose among left corners where the full-size pixel is visible.
    allowed_small = cv2.resize(visible.astype(np.uint8), left_small.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    src_small = pick_keypoints(rng, left_small, allowed_small, count)
    src_full = np.clip(np.round((src_small + 0.5) / scale - 0.5).astype(int), 0, [width - 1, height - 1])
    keep = visible[src_full[:, 1], src_full[:, 0]]
    src_full = src_full[keep].astype(np.float64)
    trg_full = np.stack([src_full[:, 0] - disparity[src_full[:, 1].astype(int), src_full[:, 0].astype(int)],
                         src_full[:, 1]], axis=1)
    src_kps, trg_kps = _scale_points(src_full, scale), _scale_points(trg_full, scale)
    full = np.ones(left_small.shape[:2], bool)
    record = dict(src_bndbox=_box(full), trg_bndbox=_box(full), viewpoint_variation=1, scale_variation=0,
                  truncation=0, occlusion=3, warp=dict(kind='stereo', resize_scale=scale))
    return dict(source=left_small, target=right_small, src_kps=src_kps, trg_kps=trg_kps, record=record)


def graf_pair(rng: np.random.Generator, data_dir: str, max_side: int, count: int) -> dict:
    """Oxford's graffiti 1 -> 3 (opencv-doc): real viewpoint change with the ground-truth homography."""
    from sfc_plugin.utils import read_image
    first, third = read_image(os.path.join(data_dir, 'graf1.png')), read_image(os.path.join(data_dir, 'graf3.png'))
    xml_path = os.path.join(data_dir, 'H1to3p.xml')
    storage = cv2.FileStorage(xml_path, cv2.FILE_STORAGE_READ)
    matrix = storage.getNode('H13').mat() if storage.isOpened() else None
    if matrix is None or matrix.shape != (3, 3):
        raise ValueError(f'{xml_path}: expected a 3x3 matrix H13 (OpenCV FileStorage XML)')
    first_small, scale = _resize_max_side(first, max_side)
    third_small, _ = _resize_max_side(third, max_side)
    inverse = np.linalg.inv(matrix)
    height, width = third.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    shown = _apply_homography(inverse, np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    inside = ((shown[:, 0] >= 0) & (shown[:, 0] <= first.shape[1] - 1) & (shown[:, 1] >= 0) &
              (shown[:, 1] <= first.shape[0] - 1)).reshape(height, width)
    inside_small = cv2.resize(inside.astype(np.uint8), third_small.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    trg_kps = pick_keypoints(rng, third_small, inside_small, count)
    src_kps = _scale_points(_apply_homography(inverse, _scale_points(trg_kps, 1 / scale)), scale)
    record = dict(src_bndbox=_box(np.ones(first_small.shape[:2], bool)), trg_bndbox=_box(inside_small),
                  viewpoint_variation=2, scale_variation=0, truncation=2, occlusion=0,
                  warp=dict(kind='graf1->graf3', homography=matrix.round(8).tolist(), resize_scale=scale))
    return dict(source=first_small, target=third_small, src_kps=src_kps, trg_kps=trg_kps, record=record)


def check_opencv_doc(data_dir: str) -> None:
    """FileNotFoundError naming what is missing unless ``data_dir`` holds the opencv-doc files used."""
    missing = [name for name in OPENCV_DOC_FILES if not os.path.isfile(os.path.join(data_dir, name))]
    if missing:
        raise FileNotFoundError(
            f'{data_dir}: no {", ".join(missing)} there. Give the data folder of an unpacked Debian opencv-doc '
            '(apt-get download opencv-doc && dpkg -x opencv-doc_*.deb DIR; then '
            'DIR/usr/share/doc/opencv-doc/examples/data), or leave --opencv-data out')


def build_pairs(seed: int = 0, max_side: int = 320, warps_per_photo: int = 2, keypoints: int = 20,
                photos: Sequence[str] = PHOTOS, opencv_data: Optional[str] = None,
                photometric: bool = True) -> List[dict]:
    """Every pair of the benchmark (see the module docstring): dicts with ``category``, ``source``,
    ``target`` (RGB uint8), ``src_kps``/``trg_kps`` (N, 2) and ``record`` (SPair fields and provenance)."""
    pairs = []
    resized = {name: _resize_max_side(_photo(name), max_side)[0] for name in photos}
    for photo_index, name in enumerate(photos):
        occluder = resized[photos[(photo_index + 1) % len(photos)]]
        for kind in ('homography', 'tps'):
            for _ in range(warps_per_photo):
                rng = np.random.default_rng([seed, len(pairs)])
                pairs.append(dict(category=name, **warp_pair(rng, resized[name], occluder, kind, keypoints,
                                                             photometric)))
    from skimage import data
    left, right, disparity = data.stereo_motorcycle()
    pairs.append(dict(category='stereo_motorcycle', **stereo_pair(np.random.default_rng([seed, len(pairs)]), left,
                                                                  right, disparity, max_side, keypoints)))
    if opencv_data is not None:
        check_opencv_doc(opencv_data)
        pairs.append(dict(category='graf', **graf_pair(np.random.default_rng([seed, len(pairs)]), opencv_data,
                                                       max_side, keypoints)))
        from sfc_plugin.utils import read_image
        ground_truth = cv2.imread(os.path.join(opencv_data, 'aloeGT.png'), cv2.IMREAD_UNCHANGED)
        if ground_truth is None or ground_truth.ndim != 2:
            raise ValueError(f'{os.path.join(opencv_data, "aloeGT.png")}: expected a single-channel disparity PNG')
        pairs.append(dict(category='aloe', **stereo_pair(
            np.random.default_rng([seed, len(pairs)]), read_image(os.path.join(opencv_data, 'aloeL.jpg')),
            read_image(os.path.join(opencv_data, 'aloeR.jpg')), ground_truth.astype(np.float64), max_side,
            keypoints)))
    return pairs


def write_benchmark(out: str, pairs: List[dict], meta: Dict[str, object], overwrite: bool = False) -> str:
    """Write ``pairs`` under ``out`` in the SPair-71k layout (split 'test'), all at once: the files are
    made in a temporary folder beside ``out`` that then replaces it."""
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f'{out}: already exists (pass --overwrite to replace it)')
    with atomic_folder(out) as work:
        lines = []
        for index, pair in enumerate(pairs, 1):
            category = pair['category']
            names = [f'{category}_{index:03d}_{role}' for role in ('src', 'trg')]
            folder = os.path.join(work, 'JPEGImages', category)
            os.makedirs(folder, exist_ok=True)
            for name, image in zip(names, (pair['source'], pair['target'])):
                cv2.imwrite(os.path.join(folder, f'{name}.jpg'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            line = f'{index:06d}-{names[0]}-{names[1]}:{category}'
            record = dict(pair_id=index, src_imname=f'{names[0]}.jpg', trg_imname=f'{names[1]}.jpg',
                          category=category, src_imsize=[*pair['source'].shape[1::-1], 3],
                          trg_imsize=[*pair['target'].shape[1::-1], 3],
                          src_kps=np.round(pair['src_kps'], 3).tolist(), trg_kps=np.round(pair['trg_kps'], 3).tolist(),
                          kps_ids=list(range(len(pair['src_kps']))), **pair['record'])
            pair_dir = os.path.join(work, 'PairAnnotation', SPLIT)
            os.makedirs(pair_dir, exist_ok=True)
            write_json(os.path.join(pair_dir, f'{line}.json'), record)
            lines.append(line)
        os.makedirs(os.path.join(work, 'Layout', 'large'))
        with open(os.path.join(work, 'Layout', 'large', f'{SPLIT}.txt'), 'w') as file:
            file.write('\n'.join(lines) + '\n')
        write_json(os.path.join(work, 'meta.json'),
                   dict(meta, pairs=len(pairs), categories=sorted({pair['category'] for pair in pairs})))
    return out
