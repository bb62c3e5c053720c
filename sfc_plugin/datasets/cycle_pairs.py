"""Unlabelled same-category image pairs zipped to a two-view dataset, for MoCo's cross-instance cycle term.

Pair sources (no keypoints or boxes are read):

- the SPair-71k layout: ``Layout/<layout>/<split>.txt``, one ``<index>-<source>-<target>:<category>``
  per line, images ``JPEGImages/<category>/<name>.jpg``;
- a folder of category folders: every ordered pair of two different images directly inside one
  category folder (sorted by file name).
"""
import os
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sfc_plugin.registry import DATASETS
from sfc_plugin.utils import IMAGE_EXTENSIONS, problems_summary, read_image, read_json

# Tux Paint's animal stamps are kept out of all semantic-correspondence work (training, tuning, pair sets).
HELD_OUT_FOLDER = os.path.join('tuxpaint', 'stamps', 'animals')

Pair = Tuple[str, str, str]  # source path, target path, category


def _check_not_held_out(path: str) -> None:
    if os.sep + HELD_OUT_FOLDER + os.sep in os.path.realpath(path) + os.sep:
        raise ValueError(f'{path}: Tux Paint\'s animals stamps are held out of semantic-correspondence work')


def _spair_names(image_dir: str, names: List[str]) -> Optional[Tuple[str, str]]:
    """Split the dash-separated '<source>-<target>' parts into two names whose images exist."""
    candidates = [('-'.join(names[:cut]), '-'.join(names[cut:])) for cut in range(1, len(names))]
    for source, target in candidates:
        if all(os.path.isfile(os.path.join(image_dir, f'{name}.jpg')) for name in (source, target)):
            return source, target
    return None


def _same_instance(data_root: str, split: str, line: str) -> bool:
    """Whether the pair file marks the pair as one object shown twice (``kind`` 'exact', the supervised
    pairs of the project's semantic pair set), which is no cross-instance pair."""
    path = os.path.join(data_root, 'PairAnnotation', split, f'{line}.json')
    return os.path.isfile(path) and read_json(path, ValueError, 'pair annotation').get('kind') == 'exact'


def spair_pairs(data_root: str, split: str = 'test', layout: str = 'large') -> List[Pair]:
    """The cross-instance pairs of an SPair-71k layout list, in its order (pairs whose file marks them
    ``kind`` 'exact', one object twice, are left out)."""
    list_path = os.path.join(data_root, 'Layout', layout, f'{split}.txt')
    with open(list_path) as file:
        lines = [line.strip() for line in file if line.strip()]
    pairs, problems = [], []
    for number, line in enumerate(lines, 1):
        stem, _, category = line.partition(':')
        parts = stem.split('-')
        image_dir = os.path.join(data_root, 'JPEGImages', category)
        names = _spair_names(image_dir, parts[1:]) if category and len(parts) >= 3 else None
        if names is None:
            problems.append(f'{list_path}:{number}: expected <index>-<source>-<target>:<category> with both '
                            f'images in JPEGImages/<category>, got {line!r}')
            continue
        if _same_instance(data_root, split, line):
            continue
        pairs.append((os.path.join(image_dir, f'{names[0]}.jpg'), os.path.join(image_dir, f'{names[1]}.jpg'),
                      category))
    if problems:
        raise ValueError(f'{list_path}: {len(problems)} of {len(lines)} lines are not pairs:'
                         f'{problems_summary(problems)}')
    return pairs


def folder_pairs(data_root: str) -> List[Pair]:
    """Every ordered pair of two different images of one category folder of ``data_root``."""
    pairs = []
    for category in sorted(os.listdir(data_root)):
        folder = os.path.join(data_root, category)
        if not os.path.isdir(folder):
            continue
        _check_not_held_out(folder)
        images = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                        if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS))
        pairs += [(source, target, category) for source in images for target in images if source != target]
    return pairs


def same_category_pairs(data_root: str, split: str = 'test', layout: str = 'large') -> List[Pair]:
    """The pairs of an SPair-71k root (when ``Layout/<layout>/<split>.txt`` exists) or of a folder of
    category folders; an error names ``data_root`` when there are none."""
    _check_not_held_out(data_root)
    if os.path.isfile(os.path.join(data_root, 'Layout', layout, f'{split}.txt')):
        pairs = spair_pairs(data_root, split, layout)
    elif os.path.isdir(data_root):
        pairs = folder_pairs(data_root)
    else:
        raise ValueError(f'{data_root}: no such folder of image pairs')
    if not pairs:
        raise ValueError(f'{data_root}: no image pairs (expected Layout/{layout}/{split}.txt of SPair-71k, or '
                         'category folders with at least two images)')
    return pairs


def read_pair(source: str, target: str, size: int) -> torch.Tensor:
    """uint8 (2, 3, size, size): both images resized (bilinear) to size x size."""
    images = [cv2.resize(read_image(path), (size, size), interpolation=cv2.INTER_LINEAR) for path in (source, target)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def zip_indices(num_images: int, num_pairs: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(image index, pair index) of each item of the zip of two sets, max(num_images, num_pairs) long:
    the longer set in order, the shorter one through seeded random permutations (a new one each time
    it runs out, so every element comes back equally often, give or take one)."""
    length = max(num_images, num_pairs)
    shorter = min(num_images, num_pairs)
    rng = np.random.default_rng(seed)
    shuffled = np.concatenate([rng.permutation(shorter) for _ in range(-(-length // shorter))])[:length]
    ordered = np.arange(length)
    return (shuffled, ordered) if num_images < num_pairs else (ordered, shuffled)


@DATASETS.register_module()
class CyclePairDataset(Dataset):
    """A two-view image dataset with a same-category image pair added to each item.

    Each item is the wrapped dataset's item (``dict(inputs=uint8 (2, 3, S, S), data_samples=
    BaseDataElement)``) whose data sample gets the field ``pair_images``, uint8 (2, 3, P, P) (source,
    target, resized to ``pair_size`` squares), and the metainfo ``pair_paths`` and ``pair_category``.
    The two sets are zipped as in the reference training code: the length is the longer one's, and
    the shorter one is re-indexed by seeded random permutations (``zip_indices``).

    Args:
        dataset: the two-view dataset (config or object).
        pairs_root: an SPair-71k root or a folder of category folders (see the module docstring).
        split: the SPair-71k list ('trn', 'val', 'test'); the reference trains on 'test' (images only).
        layout: the SPair-71k layout folder.
        pair_size: side P of the pair images.
        seed: seed of the permutations.
    """

    def __init__(self, dataset: Union[dict, Dataset], pairs_root: str, split: str = 'test', layout: str = 'large',
                 pair_size: int = 224, seed: int = 0) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if len(self.dataset) == 0:
            raise ValueError(f'CyclePairDataset: the wrapped dataset {type(self.dataset).__name__} is empty')
        self.pairs: Sequence[Pair] = same_category_pairs(pairs_root, split, layout)
        self.pair_size = pair_size
        self.image_indices, self.pair_indices = zip_indices(len(self.dataset), len(self.pairs), seed)

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def __len__(self) -> int:
        return len(self.image_indices)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[int(self.image_indices[index])]
        source, target, category = self.pairs[int(self.pair_indices[index])]
        sample = item['data_samples']
        sample.pair_images = read_pair(source, target, self.pair_size)
        sample.set_metainfo(dict(pair_paths=(source, target), pair_category=category))
        return item
