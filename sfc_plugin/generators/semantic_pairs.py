"""Cross-instance semantic pairs from photographed Tux Paint stamps, written in the SPair-71k layout.

A *semantic* pair shows two different instances of one category (a cello and an electric guitar, a
beetle and a pickup truck), so matching must rely on what the parts are, not on the same texture.
The objects are photographs with alpha mattes from Debian's ``tuxpaint-stamps-default``; a person
placed the keypoints by hand on every stamp (``data/semantic_keypoints.json``, x, y in the stamp's
own pixels, 0-based pixel centres; ``null`` where a part is not visible). The ``animals/`` stamps are
never used.

Each written image is one stamp alpha-blended onto a real background photo (scikit-image photos and,
with ``opencv_data``, Debian opencv-doc photos; none shows an object of an annotated category):

- the background is a random crop (60-100 % of each side) of a photo, resized so that its longer side
  is ``max_side`` pixels;
- the object (the box of the stamp's alpha) is scaled so that its longer side is a random 35-75 % of
  ``max_side`` (less when it would not fit), mirrored left-right with probability 1/2, rotated by up
  to ``max_angle`` degrees and placed at a random position fully inside the image;
- the keypoints go through the same resize, mirror and rotation (exactly the affine map the image is
  warped with); the box is that of the warped alpha (>= 0.5).

Keypoint names are semantic (``front_wheel``, ``handle_top``). For symmetric categories (mushroom,
apple, gravestone, shirt, hat) the left/right names refer to the image side and are swapped in a mirrored image
(the category's ``flip_pairs``). Categories with a facing (car, jug, military vehicle, wrench, scissors) record
each stamp's ``facing``; a pair is ``mirrored`` when its two written objects face opposite ways
(stamp facing xor mirror).

Splits (disjoint in categories and stamps): ``test`` (report categories), ``val`` (tuning categories,
with a per-category pair cap so that no category dominates) and ``trn``, for training, from other
categories on other background photos (``TRN_BACKGROUNDS``, none of the report sets' photos). ``trn``
holds three kinds of pair (the record's ``kind`` and ``labelled``):

- ``exact``: one stamp of an ``unlabelled`` category (the annotation file's list; no annotated stamp
  among them) composited twice (two independent draws). Points sampled uniformly on the stamp
  (alpha >= 0.5) go through each draw's exact affine map, so the keypoints are exact same-instance
  matches on a photographed object (``labelled: true``);
- ``cross`` without keypoints: two different stamps of an ``unlabelled`` category (``labelled: false``);
- ``cross`` with keypoints: two different stamps of a hand-annotated ``trn`` category (split ``trn``
  in ``categories``: shirt, hat, scissors; drawn clothes stamps among them), every ordered pair of
  instances ``trn_labelled_draws`` times, keypoints, flips and ``mirrored`` exactly as in test and val
  (``labelled: true``). They come after the other ``trn`` pairs, so adding them leaves those unchanged.

Every image of every pair is a fresh draw from ``numpy.random.default_rng([seed, split, pair, role])``.
``write_class_folders`` writes single composites of the ``trn`` stamps as class folders
(``<category>/<image>.jpg``) for training that needs only image-level labels.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from sfc_plugin.utils import atomic_folder, atomic_path, read_json, write_json

__all__ = ['ANNOTATION_FILE', 'AnnotationError', 'load_annotations', 'annotation_problems', 'read_stamp',
           'background_photos', 'composite', 'plan_pairs', 'render_pair', 'write_semantic_pairs',
           'trn_background_photos', 'sample_stamp_points', 'render_exact_pair', 'write_class_folders',
           'draw_keypoint_sheet', 'draw_pair', 'draw_examples', 'write_jpeg_atomic']

ANNOTATION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'semantic_keypoints.json')
SPLITS = ('test', 'val', 'trn')
FORBIDDEN_STAMPS = 'animals/'  # held out from all semantic-correspondence work
# Backgrounds with no object of an annotated category in them (left out: scikit-image's
# coffee, a cup; opencv-doc's building.jpg and graf1.png, which show cars)
SKIMAGE_BACKGROUNDS = ('brick', 'grass', 'gravel', 'rocket', 'astronaut', 'hubble_deep_field',
                       'immunohistochemistry', 'moon')
OPENCV_DOC_BACKGROUNDS = ('leuvenA.jpg', 'leuvenB.jpg', 'board.jpg', 'starry_night.jpg', 'stuff.jpg', 'blox.jpg',
                          'ela_original.jpg')
# Backgrounds of 'trn' and the class folders: real photos that no report set shows (the semantic test
# and val backgrounds above; the geometric pair benchmark's scikit-image PHOTOS and stereo_motorcycle,
# opencv-doc's graf and aloe files), with no object of an annotated category and none of a 'trn' one
# (fruit, vegetable, flower, tree, ball, ...): a cameraman with a tripod on a lawn, coins, a printed
# page, handwriting on a board; a palace against the sky, books on a floor (the left/right stereo views),
# boxes and books, dark shapes on a light box, a newspaper sudoku. Left out: aero1/aero3 (trees, roads),
# apple, fruits and orange (fruit), basketball1/2 and messi5 (balls), building and licenseplate_motion
# (cars), animals (baboon, chicky_512, butterfly, squirrel_cls), drawings and renders. The scikit-image
# ones are always there, the opencv-doc ones when its data folder is given.
TRN_BACKGROUNDS = ('skimage:camera', 'skimage:coins', 'skimage:page', 'skimage:text', 'opencv-doc:home.jpg',
                   'opencv-doc:left.jpg', 'opencv-doc:right.jpg', 'opencv-doc:box_in_scene.png',
                   'opencv-doc:pca_test1.jpg', 'opencv-doc:sudoku.png')
JPEG_QUALITY = 95
COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230))  # one per keypoint index (RGB)


class AnnotationError(ValueError):
    """The keypoint annotation file is malformed or disagrees with the stamps; the message names the file."""


def load_annotations(path: str = ANNOTATION_FILE) -> dict:
    """The annotation file, checked for structure (``annotation_problems`` without the stamps)."""
    annotations = read_json(path, AnnotationError, 'keypoint annotation file not found')
    problems = annotation_problems(annotations)
    if problems:
        raise AnnotationError(f'{path}: {len(problems)} problems:\n  ' + '\n  '.join(problems[:20]))
    return annotations


def _forbidden(stamp: str) -> bool:
    """Whether a stamp path lies under ``FORBIDDEN_STAMPS`` (also through ``..`` or ``./``)."""
    return os.path.normpath(stamp).replace(os.sep, '/').startswith(FORBIDDEN_STAMPS)


def _is_point(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and np.isfinite(v) for v in value))


def annotation_problems(annotations: dict, stamps_dir: Optional[str] = None) -> List[str]:
    """Everything wrong with an annotation dict, one line each (empty: well formed).

    Structure: every category has a split in ``SPLITS``, unique keypoint names, flip pairs of those
    names; every instance a stamp path (never under ``animals/``), the category's split, a facing
    (``left``, ``right`` or null) and at least two keypoints named from the category's list. Splits are
    disjoint: a stamp belongs to one category; no annotated stamp is among the unlabelled ones, so
    ``trn`` shares no stamp with ``test`` and ``val``, and no unlabelled category is named like an
    annotated one. With
    ``stamps_dir``: every stamp exists and every keypoint lies on it (alpha > 0 at its pixel).
    """
    problems = []
    categories = annotations.get('categories') if isinstance(annotations, dict) else None
    if not isinstance(categories, dict) or not categories:
        return ['no "categories" object']
    owner = {}
    for category, entry in categories.items():
        where = f'category {category!r}'
        names = entry.get('keypoints', [])
        if entry.get('split') not in SPLITS:
            problems.append(f'{where}: split must be one of {SPLITS}, got {entry.get("split")!r}')
        if not names or len(set(names)) != len(names):
            problems.append(f'{where}: "keypoints" must be a non-empty list of unique names')
        for pair in entry.get('flip_pairs', []):
            if len(pair) != 2 or not set(pair) <= set(names):
                problems.append(f'{where}: flip pair {pair!r} must name two of its keypoints')
        for instance, record in entry.get('instances', {}).items():
            at = f'{where}, instance {instance!r}'
            stamp = record.get('stamp', '')
            if not isinstance(stamp, str) or not stamp.endswith('.png') or _forbidden(stamp):
                problems.append(f'{at}: stamp must be a .png path outside {FORBIDDEN_STAMPS}, got {stamp!r}')
            if stamp in owner:
                problems.append(f'{at}: stamp {stamp} is also instance {owner[stamp]}')
            owner[stamp] = f'{category}/{instance}'
            if record.get('split') != entry.get('split'):
                problems.append(f'{at}: split {record.get("split")!r} differs from the category\'s')
            if record.get('facing') not in (None, 'left', 'right'):
                problems.append(f'{at}: facing must be "left", "right" or null')
            points = record.get('keypoints', {})
            unknown = set(points) - set(names)
            if unknown:
                problems.append(f'{at}: keypoints {sorted(unknown)} are not in the category\'s list')
            placed = {name: value for name, value in points.items() if value is not None}
            bad = [name for name, value in placed.items() if not _is_point(value)]
            if bad:
                problems.append(f'{at}: keypoints {bad} must be [x, y] numbers or null')
            if len(placed) < 2:
                problems.append(f'{at}: fewer than 2 keypoints placed')
            if stamps_dir is not None and not bad and isinstance(stamp, str):
                problems += _stamp_problems(stamps_dir, stamp, placed, at)
    for category, stamps in annotations.get('unlabelled', {}).get('categories', {}).items():
        if category in categories:
            problems.append(f'unlabelled {category!r}: named like an annotated category')
        for stamp in stamps:
            if stamp in owner or _forbidden(stamp):
                problems.append(f'unlabelled {category!r}: {stamp} is an annotated stamp or under '
                                f'{FORBIDDEN_STAMPS}')
    return problems


def _stamp_problems(stamps_dir: str, stamp: str, points: Dict[str, list], at: str) -> List[str]:
    try:
        alpha = read_stamp(stamps_dir, stamp)[..., 3]
    except (OSError, ValueError) as error:
        return [f'{at}: {error}']
    problems = []
    for name, (x, y) in points.items():
        column, row = int(round(x)), int(round(y))
        if not (0 <= row < alpha.shape[0] and 0 <= column < alpha.shape[1]) or alpha[row, column] == 0:
            problems.append(f'{at}: keypoint {name} ({x}, {y}) is off the object in {stamp}')
    return problems


def read_stamp(stamps_dir: str, relative: str) -> np.ndarray:
    """A stamp as RGBA uint8 (H, W, 4); FileNotFoundError / ValueError naming the file otherwise."""
    path = os.path.join(stamps_dir, relative)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: stamp not found (install or unpack tuxpaint-stamps-default and give '
                                'its stamps folder, e.g. /usr/share/tuxpaint/stamps)')
    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert('RGBA'))
    except OSError as error:
        raise ValueError(f'{path}: not a readable image ({error})') from error
    if not (rgba[..., 3] > 0).any():
        raise ValueError(f'{path}: the stamp is fully transparent')
    return rgba


def background_photos(opencv_data: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Background photos by name, RGB uint8: scikit-image's, and opencv-doc's from ``opencv_data``."""
    from .offline_data import opencv_doc_file, skimage_photo
    photos = {f'skimage:{name}': skimage_photo(name) for name in SKIMAGE_BACKGROUNDS}
    if opencv_data is not None:
        from sfc_plugin.utils import read_image
        for name in OPENCV_DOC_BACKGROUNDS:
            photos[f'opencv-doc:{name}'] = read_image(opencv_doc_file(opencv_data, name))
    return photos


def trn_background_photos(opencv_data: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The ``trn`` backgrounds (``TRN_BACKGROUNDS``) by name, RGB uint8: the scikit-image ones, and the
    opencv-doc ones when its data folder ``opencv_data`` is given."""
    from sfc_plugin.utils import read_image

    from .offline_data import opencv_doc_file, skimage_photo
    photos = {}
    for name in TRN_BACKGROUNDS:
        source, photo = name.split(':', 1)
        if source == 'skimage':
            photos[name] = skimage_photo(photo)
        elif opencv_data is not None:
            photos[name] = read_image(opencv_doc_file(opencv_data, photo))
    return photos


def _pick_background(rng: np.random.Generator, backgrounds: Dict[str, np.ndarray], max_side: int
                     ) -> Tuple[str, np.ndarray]:
    """(name, random crop) of a random one of ``backgrounds``."""
    name = sorted(backgrounds)[int(rng.integers(len(backgrounds)))]
    return name, _background(rng, backgrounds[name], max_side)


def _background(rng: np.random.Generator, photo: np.ndarray, max_side: int) -> np.ndarray:
    """A random crop of 60-100 % of each side, resized so that its longer side is ``max_side``."""
    fraction = rng.uniform(0.6, 1.0)
    height, width = (max(8, round(side * fraction)) for side in photo.shape[:2])
    top = int(rng.integers(0, photo.shape[0] - height + 1))
    left = int(rng.integers(0, photo.shape[1] - width + 1))
    crop = photo[top:top + height, left:left + width]
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _alpha_box(alpha: np.ndarray) -> Tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def composite(rng: np.random.Generator, stamp: np.ndarray, keypoints: np.ndarray, background: np.ndarray,
              scale_range: Tuple[float, float] = (0.35, 0.75), max_angle: float = 10.0,
              flip: Optional[bool] = None) -> dict:
    """Paste an RGBA ``stamp`` onto ``background`` (RGB, the output's size) under a random similarity.

    ``keypoints`` (K, 2) are x, y in stamp pixels (NaN rows stay NaN). The object's longer side (the
    box of its alpha) becomes a random fraction in ``scale_range`` of the image's longer side (shrunk
    to fit), it is mirrored (``flip``; random when None), rotated by up to ``max_angle`` degrees and
    placed fully inside. Returns ``image`` (RGB uint8), ``keypoints`` (K, 2) in image pixels, ``box``
    [x1, y1, x2, y2] of the warped alpha >= 0.5, ``flipped``, ``angle`` (degrees), ``scale`` and
    ``affine`` (2, 3): the map of stamp pixels to image pixels the keypoints went through.
    """
    height, width = background.shape[:2]
    x1, y1, x2, y2 = _alpha_box(stamp[..., 3] > 0)
    box_w, box_h = x2 - x1 + 1, y2 - y1 + 1
    flipped = bool(rng.random() < 0.5) if flip is None else bool(flip)
    angle = float(rng.uniform(-max_angle, max_angle)) if max_angle > 0 else 0.0
    scale = rng.uniform(*scale_range) * max(height, width) / max(box_w, box_h)
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    extent_x, extent_y = scale * (cos * box_w + sin * box_h), scale * (sin * box_w + cos * box_h)
    scale *= min(1.0, (width - 3) / extent_x, (height - 3) / extent_y)

    # 1. resize (area-averaged when shrinking), premultiplied by alpha so edges do not darken
    premultiplied = stamp.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:] / 255
    size = (max(1, round(stamp.shape[1] * scale)), max(1, round(stamp.shape[0] * scale)))
    resized = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    scale_xy = np.array(size, np.float64) / np.array(stamp.shape[1::-1], np.float64)
    points = (keypoints + 0.5) * scale_xy - 0.5  # pixel centres keep their place
    corners = (np.array([[x1 - 0.5, y1 - 0.5], [x2 + 0.5, y1 - 0.5], [x2 + 0.5, y2 + 0.5], [x1 - 0.5, y2 + 0.5]])
               + 0.5) * scale_xy - 0.5
    # 2. mirror: x -> (w - 1) - x
    if flipped:
        resized = resized[:, ::-1]
        points = np.stack([size[0] - 1 - points[:, 0], points[:, 1]], axis=1)
        corners = np.stack([size[0] - 1 - corners[:, 0], corners[:, 1]], axis=1)
    # 3. rotate about the resized stamp's centre, then translate so the object lies inside the image
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = (np.array(size, np.float64) - 1) / 2
    turned = (corners - centre) @ rotation.T
    low = np.array([1.0, 1.0]) - turned.min(axis=0)
    high = np.array([width - 2.0, height - 2.0]) - turned.max(axis=0)
    position = np.where(low <= high, low + rng.random(2) * np.maximum(high - low, 0), (low + high) / 2)
    matrix = np.concatenate([rotation, (position - rotation @ centre)[:, None]], axis=1)  # (2, 3)
    # the three steps as one map of stamp pixels: resize, mirror, rotate and translate
    linear, offset = np.diag(scale_xy), 0.5 * scale_xy - 0.5
    if flipped:
        linear, offset = np.diag([-1.0, 1.0]) @ linear, np.array([size[0] - 1 - offset[0], offset[1]])
    affine = np.concatenate([rotation @ linear, (rotation @ offset + matrix[:, 2])[:, None]], axis=1)  # (2, 3)
    warped = cv2.warpAffine(np.ascontiguousarray(resized), matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(warped[..., 3:] / 255, 0, 1)
    image = warped[..., :3] + background.astype(np.float32) * (1 - alpha)
    mask = alpha[..., 0] >= 0.5
    box = [float(v) for v in _alpha_box(mask)] if mask.any() else [0.0, 0.0, 0.0, 0.0]
    return dict(image=np.clip(image, 0, 255).round().astype(np.uint8), keypoints=points @ rotation.T + matrix[:, 2],
                box=box, flipped=flipped, angle=angle, scale=float(scale), affine=affine)


def _safe(name: str) -> str:
    """A name usable inside an SPair layout line (whose fields are separated by '-')."""
    return name.replace('-', '_')


def _unlabelled_groups(annotations: dict) -> Dict[str, Dict[str, str]]:
    """category -> {instance: stamp} of the annotation file's ``unlabelled`` categories (the ``trn``
    stamps); an instance is named by its stamp's file name."""
    return {category: {os.path.splitext(os.path.basename(stamp))[0]: stamp for stamp in stamps}
            for category, stamps in annotations.get('unlabelled', {}).get('categories', {}).items()}


def plan_pairs(annotations: dict, split: str, seed: int, draws: int = 2, trn_pairs_per_category: int = 40,
               val_draws: int = 4, val_pairs_per_category: Optional[int] = 32,
               trn_exact_per_stamp: int = 3, trn_labelled_draws: int = 4) -> List[dict]:
    """The pairs of a split, in order: dicts with ``category``, ``src``/``trg`` (instance names) and their
    ``stamps``. ``test``: every ordered pair of different instances, ``draws`` times. ``val``: the same
    ``val_draws`` times, but at most ``val_pairs_per_category`` a category (None: no cap): a seeded order
    of its instance pairs is taken round by round (every pair once before any twice), so a capped
    category keeps as many different pairs as it can. ``trn`` (each pair with its ``kind``), category by
    category: its ``cross`` pairs, ordered pairs of different stamps of the unlabelled categories (never
    a ``test`` or ``val`` stamp), at most ``trn_pairs_per_category`` (a seeded sample), then its
    ``exact`` pairs, every stamp with itself ``trn_exact_per_stamp`` times; after all of those, the
    annotated ``trn`` categories' ``cross`` pairs, every ordered pair ``trn_labelled_draws`` times."""
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    groups = {}  # category -> {instance: stamp}
    if split == 'trn':
        groups = _unlabelled_groups(annotations)
    else:
        for category, entry in annotations['categories'].items():
            if entry['split'] == split:
                groups[category] = {name: record['stamp'] for name, record in entry['instances'].items()}
    plan = []
    for category_index, (category, instances) in enumerate(groups.items()):
        ordered = [(src, trg) for src in instances for trg in instances if src != trg]
        sampler = np.random.default_rng([seed, SPLITS.index(split), category_index])
        if split == 'trn':
            if len(ordered) > trn_pairs_per_category:
                chosen = sampler.choice(len(ordered), trn_pairs_per_category, replace=False)
                ordered = [ordered[index] for index in sorted(chosen)]
            slots = [(index, 0) for index in range(len(ordered))]
        else:
            repeats = draws if split == 'test' else val_draws
            slots = [(index, draw) for index in range(len(ordered)) for draw in range(repeats)]
            cap = val_pairs_per_category if split == 'val' else None
            if cap is not None and len(slots) > cap:
                rank = np.argsort(sampler.permutation(len(ordered)))  # rank[i]: place of pair i in the order
                slots = sorted(sorted(slots, key=lambda slot: (slot[1], rank[slot[0]]))[:cap])
        kind = {'kind': 'cross'} if split == 'trn' else {}
        for index, _ in slots:
            src, trg = ordered[index]
            plan.append(dict(category=category, src=src, trg=trg, src_stamp=instances[src],
                             trg_stamp=instances[trg], **kind))
        if split == 'trn':
            plan += [dict(category=category, src=instance, trg=instance, src_stamp=stamp, trg_stamp=stamp,
                          kind='exact') for instance, stamp in instances.items() for _ in range(trn_exact_per_stamp)]
    if split == 'trn':
        for category, entry in annotations['categories'].items():
            if entry['split'] != 'trn':
                continue
            instances = {name: record['stamp'] for name, record in entry['instances'].items()}
            plan += [dict(category=category, src=src, trg=trg, src_stamp=instances[src], trg_stamp=instances[trg],
                          kind='cross') for src in instances for trg in instances if src != trg
                     for _ in range(trn_labelled_draws)]
    return plan


def _instance_keypoints(annotations: dict, category: str, instance: str
                        ) -> Tuple[List[str], np.ndarray, Optional[str]]:
    """(names, (K, 2) float with NaN where absent, facing) of an annotated instance; ([], (0, 2), None) else."""
    entry = annotations['categories'].get(category)
    if entry is None or instance not in entry['instances']:
        return [], np.zeros((0, 2)), None
    record = entry['instances'][instance]
    names = entry['keypoints']
    points = np.array([record['keypoints'].get(name) or [np.nan, np.nan] for name in names], np.float64)
    return names, points, record.get('facing')


def _mirror_names(names: List[str], points: np.ndarray, flip_pairs: Sequence[Sequence[str]]) -> np.ndarray:
    """Rows of ``points`` swapped for each flip pair (names by image side in a mirrored image)."""
    points = points.copy()
    for left, right in flip_pairs:
        i, j = names.index(left), names.index(right)
        points[[i, j]] = points[[j, i]]
    return points


def _level(value: float, small: float, large: float) -> int:
    return 0 if value < small else 1 if value < large else 2


def render_pair(rng_key: Sequence[int], annotations: dict, stamps: Dict[str, np.ndarray],
                backgrounds: Dict[str, np.ndarray], planned: dict, labelled: bool, max_side: int = 320,
                max_angle: float = 10.0) -> dict:
    """Both images of one planned pair (``plan_pairs``) and its SPair record (without the image names);
    ``stamps`` holds every stamp the plan names (RGBA), ``labelled=False`` leaves the keypoints out."""
    category = planned['category']
    entry = annotations['categories'].get(category, {})
    names, views = [], []
    for role_index, role in enumerate(('src', 'trg')):
        rng = np.random.default_rng([*rng_key, role_index])
        background_name, background = _pick_background(rng, backgrounds, max_side)
        names, points, facing = _instance_keypoints(annotations, category, planned[role])
        if not labelled:
            names, points = [], np.zeros((0, 2))
        view = composite(rng, stamps[planned[f'{role}_stamp']], points, background, max_angle=max_angle)
        if view['flipped']:
            facing = {'left': 'right', 'right': 'left'}.get(facing)
            if names:
                view['keypoints'] = _mirror_names(names, view['keypoints'], entry.get('flip_pairs', []))
        view.update(background=background_name, facing=facing)
        views.append(view)
    src, trg = views
    ids = np.nonzero(np.isfinite(src['keypoints']).all(axis=1) & np.isfinite(trg['keypoints']).all(axis=1))[0]
    if src['facing'] is not None and trg['facing'] is not None:
        mirrored = src['facing'] != trg['facing']
    else:
        mirrored = False if category in annotations['categories'] else None
    record = dict(
        category=category, src_imsize=[*src['image'].shape[1::-1], 3], trg_imsize=[*trg['image'].shape[1::-1], 3],
        src_kps=np.round(src['keypoints'][ids], 2).tolist(), trg_kps=np.round(trg['keypoints'][ids], 2).tolist(),
        kps_ids=ids.tolist(), kps_names=[names[i] for i in ids], src_bndbox=src['box'], trg_bndbox=trg['box'],
        viewpoint_variation=2 if mirrored else 0, scale_variation=_scale_variation(src['box'], trg['box']),
        truncation=0, occlusion=0, mirrored=mirrored, labelled=bool(labelled),
        **({'kind': planned['kind']} if 'kind' in planned else {}),
        src_instance=planned['src'], trg_instance=planned['trg'],
        src_stamp=planned['src_stamp'], trg_stamp=planned['trg_stamp'], **_view_fields(src, trg))
    return dict(source=src['image'], target=trg['image'], record=record)


def _scale_variation(src_box: Sequence[float], trg_box: Sequence[float]) -> int:
    """SPair's scale flag from the two boxes' longer sides: 0 under a factor sqrt(2), 1 under 2, else 2."""
    src_side = max(src_box[2] - src_box[0], src_box[3] - src_box[1]) + 1
    trg_side = max(trg_box[2] - trg_box[0], trg_box[3] - trg_box[1]) + 1
    return _level(abs(np.log2(src_side / trg_side)), 0.5, 1.0)


def _view_fields(src: dict, trg: dict) -> dict:
    """The record's per-image draw fields (``src_flipped``, ``trg_angle``, ...) of two composites."""
    fields = {}
    for role, view in (('src', src), ('trg', trg)):
        fields.update({f'{role}_flipped': view['flipped'], f'{role}_facing': view['facing'],
                       f'{role}_angle': round(view['angle'], 3), f'{role}_scale': round(view['scale'], 5),
                       f'{role}_background': view['background']})
    return fields


def sample_stamp_points(rng: np.random.Generator, stamp: np.ndarray, count: int) -> np.ndarray:
    """``count`` different pixel centres x, y drawn uniformly from the stamp's pixels with alpha >= 0.5 (all
    of them when it has fewer); (N, 2) float64 in stamp pixels."""
    ys, xs = np.nonzero(stamp[..., 3] >= 128)
    chosen = rng.choice(len(xs), min(count, len(xs)), replace=False)
    return np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float64)


def _inside(points: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(N,) whether each x, y of ``points`` (N, 2) lies within the image's pixel centres."""
    height, width = image.shape[:2]
    return ((points >= 0) & (points <= np.array([width - 1, height - 1]))).all(axis=1)


def render_exact_pair(rng_key: Sequence[int], stamp: np.ndarray, backgrounds: Dict[str, np.ndarray],
                      planned: dict, points: int = 24, max_side: int = 320, max_angle: float = 10.0) -> dict:
    """Both images of one planned ``exact`` pair (``plan_pairs``) and its SPair record (without the image
    names): ``stamp`` (RGBA) composited twice, two independent draws. ``points`` points sampled on the
    stamp (``sample_stamp_points``) go through each draw's map; those inside both images are the
    keypoints (``kps_ids``: their indices among the sampled points, ``stamp_kps``: them in stamp pixels).
    ``mirrored``: the two draws' mirror flags differ."""
    stamp_points = sample_stamp_points(np.random.default_rng([*rng_key, 2]), stamp, points)  # (N, 2)
    views = []
    for role_index in range(2):
        rng = np.random.default_rng([*rng_key, role_index])
        background_name, background = _pick_background(rng, backgrounds, max_side)
        view = composite(rng, stamp, stamp_points, background, max_angle=max_angle)
        view.update(background=background_name, facing=None)
        views.append(view)
    src, trg = views
    ids = np.nonzero(_inside(src['keypoints'], src['image']) & _inside(trg['keypoints'], trg['image']))[0]
    mirrored = src['flipped'] != trg['flipped']
    record = dict(
        category=planned['category'], src_imsize=[*src['image'].shape[1::-1], 3],
        trg_imsize=[*trg['image'].shape[1::-1], 3], src_kps=np.round(src['keypoints'][ids], 2).tolist(),
        trg_kps=np.round(trg['keypoints'][ids], 2).tolist(), kps_ids=ids.tolist(),
        stamp_kps=stamp_points[ids].tolist(), src_bndbox=src['box'], trg_bndbox=trg['box'],
        viewpoint_variation=2 if mirrored else 0, scale_variation=_scale_variation(src['box'], trg['box']),
        truncation=0, occlusion=0, mirrored=mirrored, labelled=bool(len(ids)), kind='exact',
        src_instance=planned['src'], trg_instance=planned['trg'], src_stamp=planned['src_stamp'],
        trg_stamp=planned['trg_stamp'], **_view_fields(src, trg))
    return dict(source=src['image'], target=trg['image'], record=record)


def _write_jpeg(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f'{path}: cannot write the image')


def _checked_annotations(annotations: Optional[dict], stamps_dir: str) -> dict:
    """The annotations (the default file when None), checked against the stamps (``annotation_problems``)."""
    annotations = annotations if annotations is not None else load_annotations()
    problems = annotation_problems(annotations, stamps_dir)
    if problems:
        raise AnnotationError('the annotations disagree with the stamps in ' + stamps_dir + ':\n  '
                              + '\n  '.join(problems[:20]))
    return annotations


def _new_folder(out: str, overwrite: bool) -> str:
    """``out`` as an absolute path; FileExistsError when it exists and ``overwrite`` is not set."""
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f'{out}: already exists (pass --overwrite to replace it)')
    return out


def write_semantic_pairs(out: str, stamps_dir: str, seed: int = 0, opencv_data: Optional[str] = None,
                         annotations: Optional[dict] = None, draws: int = 2, trn_pairs_per_category: int = 40,
                         max_side: int = 320, max_angle: float = 10.0, splits: Sequence[str] = SPLITS,
                         overwrite: bool = False, val_draws: int = 4,
                         val_pairs_per_category: Optional[int] = 32, trn_exact_per_stamp: int = 3,
                         trn_points: int = 24, trn_labelled_draws: int = 4) -> dict:
    """Write the pair set under ``out`` (SPair-71k layout, see the module docstring) all at once: the files
    are made in a temporary folder beside ``out`` that then replaces it. ``trn_exact_per_stamp``: exact
    ``trn`` pairs of every stamp, ``trn_points``: points sampled for each, ``trn_labelled_draws``: draws of
    every ordered instance pair of an annotated ``trn`` category. Returns the ``meta.json`` dict."""
    annotations = _checked_annotations(annotations, stamps_dir)
    out = _new_folder(out, overwrite)
    backgrounds = background_photos(opencv_data)
    trn_backgrounds = trn_background_photos(opencv_data)
    plans = {split: plan_pairs(annotations, split, seed, draws, trn_pairs_per_category, val_draws,
                               val_pairs_per_category, trn_exact_per_stamp, trn_labelled_draws)
             for split in splits}
    stamps = {}
    for plan in plans.values():
        for planned in plan:
            for role in ('src', 'trg'):
                if planned[f'{role}_stamp'] not in stamps:
                    stamps[planned[f'{role}_stamp']] = read_stamp(stamps_dir, planned[f'{role}_stamp'])
    counts = {}
    with atomic_folder(out) as work:
        for split, plan in plans.items():
            lines, keypoints, mirrored = [], 0, 0
            os.makedirs(os.path.join(work, 'PairAnnotation', split))
            for index, planned in enumerate(plan, 1):
                rng_key = [seed, SPLITS.index(split), index]
                if planned.get('kind') == 'exact':
                    pair = render_exact_pair(rng_key, stamps[planned['src_stamp']], trn_backgrounds, planned,
                                             trn_points, max_side, max_angle)
                else:
                    pair = render_pair(rng_key, annotations, stamps,
                                       trn_backgrounds if split == 'trn' else backgrounds, planned,
                                       planned['category'] in annotations['categories'], max_side, max_angle)
                category = planned['category']
                stems = [f'{split}{index:05d}_{role}_{_safe(planned[role])}' for role in ('src', 'trg')]
                folder = os.path.join(work, 'JPEGImages', category)
                os.makedirs(folder, exist_ok=True)
                for stem, image in zip(stems, (pair['source'], pair['target'])):
                    _write_jpeg(os.path.join(folder, f'{stem}.jpg'), image)
                line = f'{index:05d}-{stems[0]}-{stems[1]}:{category}'
                record = dict(pair_id=index, src_imname=f'{stems[0]}.jpg', trg_imname=f'{stems[1]}.jpg',
                              **pair['record'])
                write_json(os.path.join(work, 'PairAnnotation', split, f'{line}.json'), record)
                lines.append(line)
                keypoints += len(record['src_kps'])
                mirrored += bool(record['mirrored'])
            os.makedirs(os.path.join(work, 'Layout', 'large'), exist_ok=True)
            with open(os.path.join(work, 'Layout', 'large', f'{split}.txt'), 'w') as file:
                file.write('\n'.join(lines) + '\n')
            categories = sorted({planned['category'] for planned in plan})
            counts[split] = dict(pairs=len(plan), keypoints=keypoints, categories=categories,
                                 stamps=len({p[f'{r}_stamp'] for p in plan for r in ('src', 'trg')}),
                                 mirrored_pairs=mirrored, per_category={
                                     name: sum(planned['category'] == name for planned in plan)
                                     for name in categories})
            if split == 'trn':
                counts[split]['kinds'] = {kind: sum(planned['kind'] == kind for planned in plan)
                                          for kind in ('exact', 'cross')}
                counts[split]['labelled_cross'] = sum(planned['kind'] == 'cross'
                                                      and planned['category'] in annotations['categories']
                                                      for planned in plan)
        meta = _meta(annotations, seed, opencv_data, dict(draws=draws, val_draws=val_draws,
                                                          val_pairs_per_category=val_pairs_per_category,
                                                          trn_pairs_per_category=trn_pairs_per_category,
                                                          trn_exact_per_stamp=trn_exact_per_stamp,
                                                          trn_points=trn_points,
                                                          trn_labelled_draws=trn_labelled_draws),
                     max_side, max_angle, counts, sorted(backgrounds), sorted(trn_backgrounds))
        write_json(os.path.join(work, 'meta.json'), meta)
        with open(os.path.join(work, 'README.txt'), 'w') as file:
            file.write(_readme(meta))
    return meta


def _meta(annotations: dict, seed: int, opencv_data: Optional[str], sampling: dict, max_side: int,
          max_angle: float, counts: dict, backgrounds: List[str], trn_backgrounds: List[str]) -> dict:
    return dict(
        kind='semantic correspondence: different instances of one category, keypoints placed by hand',
        objects='photographed stamps of Debian tuxpaint-stamps-default (never animals/)',
        annotation_file='sfc_plugin/generators/data/semantic_keypoints.json',
        categories={name: dict(split=entry['split'], keypoints=entry['keypoints'], instances=sorted(entry['instances']))
                    for name, entry in annotations['categories'].items()},
        backgrounds=backgrounds, trn_backgrounds=trn_backgrounds, opencv_data=opencv_data, seed=seed, **sampling,
        max_side=max_side, max_angle=max_angle,
        object_scale='35-75 % of the longer image side', splits=counts)


def _readme(meta: dict) -> str:
    lines = ['Cross-instance semantic pairs (sfc_plugin tools/make_semantic_pairs.py), SPair-71k layout:',
             '  JPEGImages/<category>/<image>.jpg, PairAnnotation/<split>/<pair>.json, Layout/large/<split>.txt',
             f'Objects: {meta["objects"]}; keypoints placed by hand ({meta["annotation_file"]}).',
             f'Backgrounds of test and val: {", ".join(meta["backgrounds"])}.',
             f'Backgrounds of trn (none of the above): {", ".join(meta["trn_backgrounds"])}.',
             f'Seed {meta["seed"]}, images {meta["max_side"]} px on the longer side, object 35-75 % of it, '
             f'mirrored with p = 1/2, rotated up to {meta["max_angle"]} degrees.',
             'Splits: test = report categories, val = tuning categories, trn = other categories: "exact" pairs '
             f'(one stamp drawn twice, {meta["trn_points"]} points sampled on it, exact keypoints), "cross" '
             'pairs of the unlabelled categories (two stamps of a category, no keypoints, "labelled": false) and '
             '"cross" pairs of the annotated trn categories (hand-placed keypoints, "labelled": true).']
    for split, count in meta['splits'].items():
        kinds = ''.join(f', {number} {kind}' for kind, number in count.get('kinds', {}).items())
        if 'labelled_cross' in count:
            kinds += f' ({count["labelled_cross"]} of them labelled)'
        lines.append(f'  {split}: {count["pairs"]} pairs{kinds}, {count["keypoints"]} keypoint matches, '
                     f'{count["mirrored_pairs"]} mirrored, per category '
                     + ', '.join(f'{name} {pairs}' for name, pairs in count['per_category'].items()))
    return '\n'.join(lines) + '\n'


def noise_background(rng: np.random.Generator, max_side: int) -> np.ndarray:
    """A background no other image shares: a smooth random colour field (a coarse grid of random colours,
    upsampled bicubically) with fine noise, 4:3 with the longer side ``max_side``; RGB uint8."""
    height, width = round(max_side * 3 / 4), max_side
    coarse = rng.uniform(0, 255, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, 6, field.shape).astype(np.float32)
    return np.clip(field, 0, 255).round().astype(np.uint8)


def write_class_folders(out: str, stamps_dir: str, opencv_data: Optional[str] = None, images_per_stamp: int = 4,
                        seed: int = 0, annotations: Optional[dict] = None, max_side: int = 320,
                        max_angle: float = 10.0, overwrite: bool = False, backgrounds: str = 'photos') -> dict:
    """Single composites of the ``trn`` stamps (the annotation file's ``unlabelled`` categories) as class
    folders ``out/<category>/<stamp>_<k>.jpg`` (``images_per_stamp`` each, ``<stamp>`` the stamp's file
    name), and ``out/meta.json`` with every image's stamp, box (x1, y1, x2, y2 of alpha >= 0.5) and draw
    (background, flipped, angle, scale, the 2 x 3 ``affine`` map of stamp pixels to image pixels).
    ``backgrounds``: 'photos' the ``trn`` background photos (random crops: images of a class share
    backgrounds), 'noise' a :func:`noise_background` per image (what the images of a class share is their
    object, as in a photo collection; the stand-in for weak supervision). Written all at once like
    ``write_semantic_pairs``; returns the meta dict."""
    if backgrounds not in ('photos', 'noise'):
        raise ValueError(f"write_class_folders: backgrounds must be 'photos' or 'noise', got {backgrounds!r}")
    annotations = _checked_annotations(annotations, stamps_dir)
    out = _new_folder(out, overwrite)
    photos = trn_background_photos(opencv_data) if backgrounds == 'photos' else {}
    groups = _unlabelled_groups(annotations)
    images = {}
    with atomic_folder(out) as work:
        number = 0
        for category, instances in groups.items():
            os.makedirs(os.path.join(work, category))
            for instance, stamp_path in instances.items():
                stamp = read_stamp(stamps_dir, stamp_path)
                number += 1
                for k in range(images_per_stamp):
                    rng = np.random.default_rng([seed, len(SPLITS), number, k])
                    if photos:
                        background_name, background = _pick_background(rng, photos, max_side)
                    else:
                        background_name, background = 'noise', noise_background(rng, max_side)
                    view = composite(rng, stamp, np.zeros((0, 2)), background, max_angle=max_angle)
                    name = f'{category}/{instance}_{k}.jpg'
                    _write_jpeg(os.path.join(work, name), view['image'])
                    images[name] = dict(category=category, stamp=stamp_path, imsize=[*view['image'].shape[1::-1], 3],
                                        box=view['box'], background=background_name, flipped=view['flipped'],
                                        angle=round(view['angle'], 3), scale=round(view['scale'], 5),
                                        affine=np.round(view['affine'], 5).tolist())
        meta = dict(kind='class folders: one photographed Tux Paint stamp (never animals/) per image, '
                         'the folder is its category',
                    annotation_file='sfc_plugin/generators/data/semantic_keypoints.json (unlabelled)',
                    categories={category: sorted(instances.values()) for category, instances in groups.items()},
                    backgrounds=sorted(photos) if photos else 'noise (one per image)', opencv_data=opencv_data,
                    seed=seed,
                    images_per_stamp=images_per_stamp, max_side=max_side, max_angle=max_angle,
                    object_scale='35-75 % of the longer image side', images=images)
        write_json(os.path.join(work, 'meta.json'), meta)
    return meta


def _label(image: np.ndarray, text: str, origin: Tuple[int, int], colour=(0, 0, 0), scale: float = 0.4) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def draw_keypoint_sheet(annotations: dict, stamps_dir: str, height: int = 250, width: int = 1500) -> np.ndarray:
    """Every annotated stamp on grey with its keypoints (dot colour and number = keypoint index), a legend
    line per category; stamps at most ``height`` pixels tall, rows ``width`` wide; RGB uint8."""
    rows = []
    for category, entry in annotations['categories'].items():
        names = entry['keypoints']
        legend = np.full((24, width, 3), 255, np.uint8)
        _label(legend, f'{category} ({entry["split"]}): ' + ', '.join(f'{i}={n}' for i, n in enumerate(names)),
               (4, 17), scale=0.5)
        rows.append(legend)
        panels = []
        for instance, record in entry['instances'].items():
            rgba = read_stamp(stamps_dir, record['stamp']).astype(np.float32)
            scale = min((height - 20) / rgba.shape[0], np.sqrt(150 * 250 / rgba.shape[0] / rgba.shape[1]), 6.0)
            size = (max(1, round(rgba.shape[1] * scale)), max(1, round(rgba.shape[0] * scale)))
            rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            alpha = rgba[..., 3:] / 255
            panel = np.full((size[1] + 20, size[0] + 20, 3), 255, np.uint8)
            panel[:size[1], 10:10 + size[0]] = (rgba[..., :3] * alpha + 170 * (1 - alpha)).astype(np.uint8)
            for index, name in enumerate(names):
                point = record['keypoints'].get(name)
                if point is None:
                    continue
                x, y = int(round((point[0] + 0.5) * scale - 0.5)) + 10, int(round((point[1] + 0.5) * scale - 0.5))
                cv2.circle(panel, (x, y), 5, (0, 0, 0), -1, cv2.LINE_AA)
                cv2.circle(panel, (x, y), 4, COLOURS[index % len(COLOURS)], -1, cv2.LINE_AA)
                _label(panel, str(index), (x + 5, y - 4), scale=0.35)
            facing = f' ({record["facing"]})' if record.get('facing') else ''
            _label(panel, f'{instance}{facing}', (4, size[1] + 15), scale=0.38)
            panels.append(panel)
        line, used = [], 0
        for panel in panels:
            if used + panel.shape[1] > width and line:
                rows.append(_pad_row(line, width))
                line, used = [], 0
            line.append(panel)
            used += panel.shape[1]
        rows.append(_pad_row(line, width))
    return np.concatenate(rows, axis=0)


def _pad_row(panels: List[np.ndarray], width: int) -> np.ndarray:
    height = max(panel.shape[0] for panel in panels)
    row = np.concatenate([np.pad(panel, ((0, height - panel.shape[0]), (0, 0), (0, 0)), constant_values=255)
                          for panel in panels], axis=1)[:, :width]
    return np.concatenate([row, np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)], axis=1)


def draw_pair(source: np.ndarray, target: np.ndarray, src_kps: np.ndarray, trg_kps: np.ndarray,
              kps_ids: Sequence[int], title: str = '') -> np.ndarray:
    """Source and target side by side, corresponding keypoints joined by lines; RGB uint8."""
    height = max(source.shape[0], target.shape[0]) + 20
    canvas = np.full((height, source.shape[1] + target.shape[1] + 10, 3), 255, np.uint8)
    canvas[20:20 + source.shape[0], :source.shape[1]] = source
    offset = source.shape[1] + 10
    canvas[20:20 + target.shape[0], offset:offset + target.shape[1]] = target
    for (xs, ys), (xt, yt), index in zip(src_kps, trg_kps, kps_ids):
        colour = COLOURS[index % len(COLOURS)]
        start, end = (int(round(xs)), int(round(ys)) + 20), (int(round(xt)) + offset, int(round(yt)) + 20)
        cv2.line(canvas, start, end, colour, 1, cv2.LINE_AA)
        for point in (start, end):
            cv2.circle(canvas, point, 4, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(canvas, point, 3, colour, -1, cv2.LINE_AA)
    _label(canvas, title, (4, 14), scale=0.42)
    return canvas


def draw_examples(root: str, split: str = 'test', per_category: int = 2,
                  categories: Optional[Sequence[str]] = None) -> np.ndarray:
    """Written pairs of ``split`` under ``root`` drawn with ``draw_pair``: per category (those named in
    ``categories``; None: all) its first mirrored and first unmirrored pair, or, where the pairs have a
    ``kind`` (``trn``), its first pair of each kind (up to ``per_category``), two pairs a row; RGB uint8."""
    from sfc_plugin.utils import read_image
    with open(os.path.join(root, 'Layout', 'large', f'{split}.txt')) as file:
        lines = [line.strip() for line in file if line.strip()]
    chosen = {}
    for line in lines:
        record = read_json(os.path.join(root, 'PairAnnotation', split, f'{line}.json'), OSError, 'pair file not found')
        if categories is not None and record['category'] not in categories:
            continue
        picked = chosen.setdefault(record['category'], {})
        key = record.get('kind', bool(record['mirrored']))
        if len(picked) < per_category and key not in picked:
            picked[key] = record
    if not chosen:
        raise ValueError(f'{root}: no {split} pair of the categories {list(categories or [])} to draw')
    drawings = []
    for category, picked in chosen.items():
        for record in picked.values():
            folder = os.path.join(root, 'JPEGImages', category)
            drawings.append(draw_pair(
                read_image(os.path.join(folder, record['src_imname'])),
                read_image(os.path.join(folder, record['trg_imname'])),
                np.asarray(record['src_kps']).reshape(-1, 2), np.asarray(record['trg_kps']).reshape(-1, 2),
                record['kps_ids'], f'{category}: {record["src_instance"]} -> {record["trg_instance"]}'
                + (' (mirrored)' if record['mirrored'] else '') + (f' [{record["kind"]}]' if 'kind' in record else '')))
    width = max(drawing.shape[1] for drawing in drawings)
    rows = []
    for start in range(0, len(drawings), 2):
        row = [np.pad(drawing, ((0, 0), (0, width - drawing.shape[1] + 10), (0, 0)), constant_values=255)
               for drawing in drawings[start:start + 2]]
        height = max(part.shape[0] for part in row)
        row = [np.pad(part, ((0, height - part.shape[0] + 10), (0, 0), (0, 0)), constant_values=255) for part in row]
        rows.append(np.concatenate(row + [np.full((height + 10, (width + 10) * (2 - len(row)), 3), 255, np.uint8)],
                                   axis=1))
    return np.concatenate(rows, axis=0)


def write_jpeg_atomic(path: str, image: np.ndarray, quality: int = 85) -> None:
    """Write an RGB image as JPEG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f'{path}: cannot write the image')
