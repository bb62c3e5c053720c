"""Semantic-correspondence benchmarks in their published layouts: SPair-71k, PF-PASCAL, PF-WILLOW.

The layouts are those HPF's download script produces and SCOT, CATs and SemiMatch read. One sample
is one image pair; images are not loaded (the matching model reads them). Every sample is a dict::

    pair_id: str                 # unique name of the pair (SPair: its layout line)
    category: str
    src_path, trg_path: str      # image files
    src_kps, trg_kps: (K, 2)     # float64 x, y in image pixels, 0-based; NaN where not visible
    valid: (K,) bool             # keypoint visible in both images (the ones PCK scores)
    src_bbox, trg_bbox: (4,)     # float64 x1, y1, x2, y2 (0-based) or None
    pck_sizes: dict[str, float]  # reference sizes of PCK from the annotations (see ``PCK_REFERENCES``;
                                 # 'image' is taken from the target image when it is read)
    difficulty: dict[str, int]   # SPair-71k only: viewpoint, scale, truncation, occlusion flags
    coordinate_origin: 0 | 1     # what the dataset's files use (predictions are written that way)
    mirrored: bool               # only when the pair file says: the two objects face opposite ways
                                 # (the project's own SPair-layout pair sets write it)
    flip: bool                   # only PF-PASCAL 'trn': both images are to be read left-right
                                 # mirrored; keypoints and boxes are already mirrored
    kind: str                    # only when the pair file says (the project's 'trn' pairs): 'exact' (one
                                 # object shown twice) or 'cross' (two instances of a category)
    labelled: bool               # only SPair-71k with allow_unlabelled: whether the pair has keypoints
                                 # (False: src_kps, trg_kps are (0, 2))

Coordinates: SPair-71k annotations are 0-based pixels; PF-PASCAL (``.mat``) and PF-WILLOW (CSV)
come from MATLAB and are 1-based: the loaders subtract 1.
"""
import csv
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import scipy.io
from mmengine.dataset import BaseDataset
from PIL import Image

from sfc_plugin.registry import DATASETS, FUNCTIONS
from sfc_plugin.utils import problems_summary, read_json

__all__ = ['PairDataError', 'SPair71kDataset', 'PFPascalDataset', 'PFWillowDataset', 'pair_collate',
           'PCK_REFERENCES', 'PF_PASCAL_CLASSES', 'PF_WILLOW_CLASSES', 'SPAIR_DIFFICULTY']

# Reference sizes PCK can be normalised by (each dataset offers those its annotations allow):
# 'bbox'      max side of the target object's box (SPair-71k, PF-PASCAL as some papers report);
# 'image'     max side of the target image (PF-PASCAL as HPF/SCOT/CATs report);
# 'kps_bbox'  max side of the tight box of the target keypoints (PF-WILLOW).
PCK_REFERENCES = ('bbox', 'image', 'kps_bbox')

PF_PASCAL_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
                     'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                     'train', 'tvmonitor')
PF_WILLOW_CLASSES = ('car(G)', 'car(M)', 'car(S)', 'duck(S)', 'motorbike(G)', 'motorbike(M)', 'motorbike(S)',
                     'winebottle(M)', 'winebottle(wC)', 'winebottle(woC)')
# SPair-71k pair-annotation flags and the names of their values (SPair-71k devkit).
SPAIR_DIFFICULTY = {
    'viewpoint_variation': ('none', 'small', 'large'),
    'scale_variation': ('none', 'small', 'large'),
    'truncation': ('none', 'source', 'target', 'both'),
    'occlusion': ('none', 'source', 'target', 'both'),
}


class PairDataError(ValueError):
    """A pair dataset's files are missing or malformed; the message names the file."""


@FUNCTIONS.register_module()
def pair_collate(data_batch: Sequence[dict]) -> List[dict]:
    """Keep each pair sample as it is: the model reads the two images itself."""
    return list(data_batch)


def _box_side(points: np.ndarray) -> float:
    """Max side of the tight box of the finite points (N, 2)."""
    finite = points[np.isfinite(points).all(axis=1)]
    if len(finite) == 0:
        return float('nan')
    return float((finite.max(axis=0) - finite.min(axis=0)).max())


def _image_size(path: str) -> tuple:
    """(H, W) from the image header; PairDataError naming the file otherwise."""
    if not os.path.isfile(path):
        raise PairDataError(f'{path}: no such image file')
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except OSError as error:
        raise PairDataError(f'{path}: not a readable image (corrupt?): {error}') from error


def _mirror_x(points: np.ndarray, width: int) -> np.ndarray:
    """(N, 2) 0-based x, y -> the same points in the left-right mirror of an image ``width`` wide."""
    mirrored = points.copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    return mirrored


def _mirror_box(box: np.ndarray, width: int) -> np.ndarray:
    return np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]], np.float64)


def _keypoint_array(values, path: str, what: str) -> np.ndarray:
    """(K, 2) float64 from a list of [x, y]; PairDataError naming the file if it is not that."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PairDataError(f'{path}: {what} is not a list of [x, y] numbers') from error
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise PairDataError(f'{path}: {what} must be a list of [x, y] pairs, got shape {array.shape}')
    return array


def _box_array(values, path: str, what: str) -> np.ndarray:
    try:
        box = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise PairDataError(f'{path}: {what} is not 4 numbers x1, y1, x2, y2') from error
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] < box[0] or box[3] < box[1]:
        raise PairDataError(f'{path}: {what} must be 4 finite numbers x1, y1, x2, y2 with x2 >= x1, '
                            f'y2 >= y1, got {values!r}')
    return box


class _PairDataset(BaseDataset):
    """Shared loading: the root is checked first, then every pair; all problems are reported together.

    ``test_mode`` defaults to True (evaluation datasets); ``serialize_data`` to False (samples hold
    numpy arrays and are few).
    """
    LAYOUT = ''  # the expected layout, shown when the root does not hold it

    def __init__(self, data_root: str, split: str = 'test', check_images: bool = True, **kwargs) -> None:
        self.split = split
        self.check_images = check_images
        kwargs.setdefault('test_mode', True)
        kwargs.setdefault('serialize_data', False)
        super().__init__(data_root=data_root, **kwargs)

    def _required(self) -> List[str]:
        """Paths (relative to the root) that must exist for the layout to be there."""
        raise NotImplementedError

    def _load_pairs(self) -> List[dict]:
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        missing = [path for path in self._required() if not os.path.exists(os.path.join(self.data_root, path))]
        if missing:
            raise PairDataError(
                f'{self.data_root}: no {type(self).__name__[:-7]} split {self.split!r} there '
                f'({", ".join(missing)} missing). Expected layout under the root:\n{self.LAYOUT}')
        pairs = self._load_pairs()
        if self.check_images:
            problems, sizes = [], {}
            for pair in pairs:
                for key in ('src_path', 'trg_path'):
                    path = pair[key]
                    if path not in sizes:
                        try:
                            sizes[path] = _image_size(path)
                        except PairDataError as error:
                            sizes[path] = None
                            problems.append(str(error))
            if problems:
                raise PairDataError(f'{type(self).__name__} ({self.data_root}, split {self.split!r}): '
                                    f'{len(problems)} image files have problems:{problems_summary(problems)}')
        return pairs

    @staticmethod
    def _sample(pair_id: str, category: str, src_path: str, trg_path: str, src_kps: np.ndarray,
                trg_kps: np.ndarray, src_bbox: Optional[np.ndarray], trg_bbox: Optional[np.ndarray],
                pck_sizes: Dict[str, float], origin: int, difficulty: Optional[dict] = None, **extra) -> dict:
        valid = np.isfinite(src_kps).all(axis=1) & np.isfinite(trg_kps).all(axis=1)
        return dict(pair_id=pair_id, category=category, src_path=src_path, trg_path=trg_path,
                    src_kps=src_kps, trg_kps=trg_kps, valid=valid, src_bbox=src_bbox, trg_bbox=trg_bbox,
                    pck_sizes=pck_sizes, difficulty=difficulty or {}, coordinate_origin=origin, **extra)


@DATASETS.register_module()
class SPair71kDataset(_PairDataset):
    """SPair-71k (Min et al. 2019): pairs listed in ``Layout/large/<split>.txt``.

    A layout line is ``<index>-<source image>-<target image>:<category>`` and names the pair file
    ``PairAnnotation/<split>/<line>.json``, whose fields are read: ``src_imname``, ``trg_imname``,
    ``category``, ``src_kps``/``trg_kps`` (lists of [x, y], 0-based pixels, the keypoints visible
    in both images, in corresponding order), ``src_bndbox``/``trg_bndbox`` ([x1, y1, x2, y2]) and
    the flags ``viewpoint_variation``, ``scale_variation``, ``truncation``, ``occlusion``. Images
    are ``JPEGImages/<category>/<imname>``. PCK reference: max side of the target box. An optional
    field ``mirrored`` (0/1 or false/true; not in the SPair-71k release, written by the project's own
    pair sets: the objects face opposite ways) is passed on as the sample's ``mirrored``; null (facing
    unknown) is treated as absent. A pair without keypoints (the project's pair sets have such
    unlabelled ``trn`` pairs) is an error unless ``allow_unlabelled`` is set.

    Args:
        data_root: the ``SPair-71k`` folder.
        split: 'trn', 'val' or 'test'.
        layout: 'large' (the published evaluation lists) or 'small'.
        check_images: check at load time that every image exists and has a readable header.
        allow_unlabelled: load pairs with no keypoints too; every sample then has ``labelled``
            (False: no keypoints, ``src_kps``/``trg_kps`` of shape (0, 2)).
    """
    METAINFO = dict(dataset_name='SPair-71k')
    LAYOUT = ('  Layout/large/{trn,val,test}.txt      <index>-<src image>-<trg image>:<category> per line\n'
              '  PairAnnotation/{trn,val,test}/<line>.json\n'
              '  JPEGImages/<category>/<image>.jpg')

    def __init__(self, data_root: str, split: str = 'test', layout: str = 'large', allow_unlabelled: bool = False,
                 **kwargs) -> None:
        self.layout = layout
        self.allow_unlabelled = allow_unlabelled
        super().__init__(data_root=data_root, split=split, **kwargs)

    def _required(self) -> List[str]:
        return [os.path.join('Layout', self.layout, f'{self.split}.txt'),
                os.path.join('PairAnnotation', self.split), 'JPEGImages']

    def _load_pairs(self) -> List[dict]:
        list_path = os.path.join(self.data_root, 'Layout', self.layout, f'{self.split}.txt')
        with open(list_path) as file:
            lines = [line.strip() for line in file if line.strip()]
        if not lines:
            raise PairDataError(f'{list_path}: empty pair list')
        pairs, problems = [], []
        for number, line in enumerate(lines, 1):
            if line.count('-') < 2 or ':' not in line:
                problems.append(f'{list_path}:{number}: expected <index>-<src>-<trg>:<category>, got {line!r}')
                continue
            try:
                pairs.append(self._load_pair(line))
            except PairDataError as error:
                problems.append(str(error))
        if problems:
            raise PairDataError(f'SPair71kDataset ({list_path}): {len(problems)} of {len(lines)} pairs have '
                                f'problems:{problems_summary(problems)}')
        return pairs

    def _load_pair(self, line: str) -> dict:
        path = os.path.join(self.data_root, 'PairAnnotation', self.split, f'{line}.json')
        record = read_json(path, PairDataError,
                           f'pair annotation listed in Layout/{self.layout}/{self.split}.txt not found')
        if not isinstance(record, dict):
            raise PairDataError(f'{path}: expected a JSON object')
        fields = ('src_imname', 'trg_imname', 'category', 'src_kps', 'trg_kps', 'src_bndbox', 'trg_bndbox',
                  *SPAIR_DIFFICULTY)
        absent = [field for field in fields if field not in record]
        if absent:
            raise PairDataError(f'{path}: missing field(s) {", ".join(absent)}')
        src_kps = _keypoint_array(record['src_kps'], path, 'src_kps')
        trg_kps = _keypoint_array(record['trg_kps'], path, 'trg_kps')
        if len(src_kps) != len(trg_kps):
            raise PairDataError(f'{path}: src_kps and trg_kps must list the same number of keypoints, '
                                f'got {len(src_kps)} and {len(trg_kps)}')
        if len(src_kps) == 0 and not self.allow_unlabelled:
            raise PairDataError(f'{path}: the pair has no keypoints (an unlabelled pair: load it with '
                                'allow_unlabelled=True)')
        src_bbox = _box_array(record['src_bndbox'], path, 'src_bndbox')
        trg_bbox = _box_array(record['trg_bndbox'], path, 'trg_bndbox')
        difficulty = {}
        for key, names in SPAIR_DIFFICULTY.items():
            value = record[key]
            if not isinstance(value, int) or not 0 <= value < len(names):
                raise PairDataError(f'{path}: {key} must be an integer in 0..{len(names) - 1}, got {value!r}')
            difficulty[key] = value
        extra = {'labelled': len(src_kps) > 0} if self.allow_unlabelled else {}
        if record.get('mirrored') is not None:  # null: facing unknown, as absent
            if record['mirrored'] not in (0, 1):  # also False / True
                raise PairDataError(f'{path}: mirrored must be 0 or 1 (false or true), got {record["mirrored"]!r}')
            extra['mirrored'] = bool(record['mirrored'])
        if isinstance(record.get('kind'), str):  # the project's training pairs: 'exact' or 'cross'
            extra['kind'] = record['kind']
        category = str(record['category'])
        image_dir = os.path.join(self.data_root, 'JPEGImages', category)
        return self._sample(
            line, category, os.path.join(image_dir, record['src_imname']),
            os.path.join(image_dir, record['trg_imname']), src_kps, trg_kps, src_bbox, trg_bbox,
            {'bbox': float(max(trg_bbox[2] - trg_bbox[0], trg_bbox[3] - trg_bbox[1])),
             'kps_bbox': _box_side(trg_kps)}, 0, difficulty, **extra)


@DATASETS.register_module()
class PFPascalDataset(_PairDataset):
    """PF-PASCAL (Ham et al. 2017) in HPF's layout.

    ``<split>_pairs.csv`` ('trn', 'val', 'test') has a header row and the columns source image,
    target image, class (1-based index into ``PF_PASCAL_CLASSES``) and, in ``trn``, flip. Image
    paths are taken by file name: ``JPEGImages/<name>``. Annotations are
    ``Annotations/<class>/<name>.mat`` with ``kps`` (N x 2, 1-based x, y; NaN rows: not visible)
    and ``bbox`` (1 x 4, x1, y1, x2, y2, 1-based). Keypoints visible in only one image are kept
    with ``valid=False`` (HPF drops them; PCK is the same). PCK references: 'image' (max side of
    the target image, the published protocol) and 'bbox' (max side of the target box).
    """
    METAINFO = dict(dataset_name='PF-PASCAL', classes=PF_PASCAL_CLASSES)
    LAYOUT = ('  {trn,val,test}_pairs.csv          source_image,target_image,class[,flip] with a header row\n'
              '  JPEGImages/<image>.jpg\n'
              '  Annotations/<class>/<image>.mat  kps (N x 2, 1-based, NaN = invisible), bbox (1 x 4)')

    def _required(self) -> List[str]:
        return [f'{self.split}_pairs.csv', 'JPEGImages', 'Annotations']

    def _read_mat(self, path: str) -> tuple:
        if not os.path.isfile(path):
            raise PairDataError(f'{path}: annotation file not found')
        try:
            record = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises several types for malformed files
            raise PairDataError(f'{path}: not a readable .mat file ({error})') from error
        for key in ('kps', 'bbox'):
            if key not in record:
                raise PairDataError(f'{path}: no {key!r} variable')
        kps = np.asarray(record['kps'], np.float64)
        if kps.ndim != 2 or kps.shape[1] != 2:
            raise PairDataError(f'{path}: kps must be N x 2 (x, y), got shape {kps.shape}')
        return kps - 1, _box_array(record['bbox'], path, 'bbox') - 1

    def _load_pairs(self) -> List[dict]:
        csv_path = os.path.join(self.data_root, f'{self.split}_pairs.csv')
        with open(csv_path, newline='') as file:
            rows = list(csv.reader(file))
        if len(rows) < 2:
            raise PairDataError(f'{csv_path}: expected a header row and at least one pair')
        pairs, problems = [], []
        for number, row in enumerate(rows[1:], 2):
            try:
                pairs.append(self._load_pair(csv_path, number, row))
            except PairDataError as error:
                problems.append(str(error))
        if problems:
            listed = '\n  '.join(problems[:20])
            raise PairDataError(f'PFPascalDataset ({csv_path}): {len(problems)} of {len(rows) - 1} pairs have '
                                f'problems:\n  {listed}')
        return pairs

    def _load_pair(self, csv_path: str, number: int, row: List[str]) -> dict:
        if len(row) < 3:
            raise PairDataError(f'{csv_path}:{number}: expected source_image,target_image,class, got {row!r}')
        try:
            class_index = int(float(row[2])) - 1
        except ValueError as error:
            raise PairDataError(f'{csv_path}:{number}: class must be an integer 1..20, got {row[2]!r}') from error
        if not 0 <= class_index < len(PF_PASCAL_CLASSES):
            raise PairDataError(f'{csv_path}:{number}: class must be an integer 1..20, got {row[2]!r}')
        category = PF_PASCAL_CLASSES[class_index]
        names = [os.path.basename(row[0].strip()), os.path.basename(row[1].strip())]
        annotations = [self._read_mat(os.path.join(self.data_root, 'Annotations', category,
                                                   os.path.splitext(name)[0] + '.mat')) for name in names]
        (src_kps, src_bbox), (trg_kps, trg_bbox) = annotations
        if len(src_kps) != len(trg_kps):
            raise PairDataError(f'{csv_path}:{number}: {names[0]} has {len(src_kps)} keypoints, {names[1]} '
                                f'{len(trg_kps)} (the same class must list the same keypoints)')
        paths = [os.path.join(self.data_root, 'JPEGImages', name) for name in names]
        pair_id = f'{os.path.splitext(names[0])[0]}-{os.path.splitext(names[1])[0]}'
        flip = False
        if len(row) > 3 and row[3].strip():
            try:
                flip_value = float(row[3])
            except ValueError:
                flip_value = None
            if flip_value not in (0, 1):
                raise PairDataError(f'{csv_path}:{number}: flip must be 0 or 1, got {row[3]!r}')
            flip = flip_value == 1
        if flip:
            (_, src_width), (_, trg_width) = _image_size(paths[0]), _image_size(paths[1])
            src_kps, trg_kps = _mirror_x(src_kps, src_width), _mirror_x(trg_kps, trg_width)
            src_bbox, trg_bbox = _mirror_box(src_bbox, src_width), _mirror_box(trg_bbox, trg_width)
            pair_id += '-flip'
        return self._sample(pair_id, category, paths[0], paths[1], src_kps, trg_kps, src_bbox, trg_bbox,
                            {'bbox': float(max(trg_bbox[2] - trg_bbox[0], trg_bbox[3] - trg_bbox[1]))}, 1,
                            **({'flip': True} if flip else {}))


@DATASETS.register_module()
class PFWillowDataset(_PairDataset):
    """PF-WILLOW (Ham et al. 2016) in HPF's layout: ``test_pairs.csv`` with inline keypoints.

    Columns (with a header row): ``imageA``, ``imageB``, then 10 x-coordinates and 10
    y-coordinates of A (``XA1..XA10, YA1..YA10``), then the same for B; 1-based pixels. Image
    paths are the CSV's with their first folder dropped (``PF-dataset/car(G)/x.png`` ->
    ``<root>/car(G)/x.png``); the category is that folder. PCK reference: max side of the tight box
    of the target keypoints ('kps_bbox'). Pair ids are ``<category>-<image A>-<image B>`` (file names
    without extension; the categories reuse file names), with ``-<line>`` added to a repeated pair.
    """
    METAINFO = dict(dataset_name='PF-WILLOW', classes=PF_WILLOW_CLASSES)
    LAYOUT = ('  test_pairs.csv   imageA,imageB,XA1..XA10,YA1..YA10,XB1..XB10,YB1..YB10 (1-based, header row)\n'
              '  <category>/<image>.png   e.g. car(G)/Cars_000a.png')
    NUM_KPS = 10

    def _required(self) -> List[str]:
        return [f'{self.split}_pairs.csv']

    def _load_pairs(self) -> List[dict]:
        csv_path = os.path.join(self.data_root, f'{self.split}_pairs.csv')
        with open(csv_path, newline='') as file:
            rows = list(csv.reader(file))
        width = 2 + 4 * self.NUM_KPS
        if len(rows) < 2:
            raise PairDataError(f'{csv_path}: expected a header row and at least one pair')
        pairs, problems, seen = [], [], set()
        for number, row in enumerate(rows[1:], 2):
            if len(row) != width:
                problems.append(f'{csv_path}:{number}: expected {width} columns (imageA, imageB, 40 coordinates), '
                                f'got {len(row)}')
                continue
            try:
                coords = np.asarray([float(value) for value in row[2:]], np.float64) - 1
            except ValueError:
                problems.append(f'{csv_path}:{number}: keypoint coordinates must be numbers')
                continue
            paths, categories = [], []
            for name in row[:2]:
                parts = [part for part in name.strip().split('/') if part]
                if len(parts) < 3:
                    problems.append(f'{csv_path}:{number}: image path {name!r} must be <folder>/<category>/<file>')
                    break
                paths.append(os.path.join(self.data_root, *parts[1:]))
                categories.append(parts[1])
            if len(paths) != 2:
                continue
            src_kps = coords[:2 * self.NUM_KPS].reshape(2, self.NUM_KPS).T  # (10, 2) x, y
            trg_kps = coords[2 * self.NUM_KPS:].reshape(2, self.NUM_KPS).T
            pair_id = '-'.join([categories[0]] + [os.path.splitext(os.path.basename(path))[0] for path in paths])
            if pair_id in seen:
                pair_id += f'-{number}'
            seen.add(pair_id)
            pairs.append(self._sample(pair_id, categories[0], paths[0], paths[1], src_kps, trg_kps, None, None,
                                      {'kps_bbox': _box_side(trg_kps)}, 1))
        if problems:
            listed = '\n  '.join(problems[:20])
            raise PairDataError(f'PFWillowDataset ({csv_path}): {len(problems)} of {len(rows) - 1} pairs have '
                                f'problems:\n  {listed}')
        return pairs
