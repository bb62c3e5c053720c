"""Image pairs for training a matcher: an SPair-layout split read into fixed-size tensors.

A sample is one pair, each image resized to ``size`` x ``size`` (aspect not kept, as CATs and
SemiMatch train); with probability ``crop_prob`` an image is first cropped at random to a window that
keeps its whole object box (CATs' crop; the rest of the time a plain resize). Keypoints and boxes
follow the crop and the resize exactly (pixel centres: ``x' = (x - x0 + 0.5) * size / w - 0.5``).
Pairs without keypoints (the unlabelled pairs of a semi-supervised split) and pairs outside the
labelled share (``labelled_fraction``: a seeded subset keeps its keypoints, the others train only the
unsupervised terms, as SemiMatch's sparse setting) have ``labelled`` False.

Sample fields: ``inputs`` (2, 3, S, S) uint8 source and target; ``data_samples`` a dict with
``src_kps``/``trg_kps`` (K, 2) float32 pixels of the resized images padded with NaN to
``max_keypoints``, ``src_bbox``/``trg_bbox`` (4,), ``labelled`` (bool) and ``pair_id``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sfc_plugin.registry import DATASETS, FUNCTIONS
from sfc_plugin.utils import read_image

__all__ = ['PairTrainingDataset', 'crop_keeping_box', 'pair_training_collate']


def crop_keeping_box(rng: np.random.Generator, image_size: Tuple[int, int], box: np.ndarray) -> np.ndarray:
    """A random window (x0, y0, x1, y1), integer pixels, end exclusive, inside the image and containing
    the whole box (x1, y1, x2, y2 inclusive pixel coordinates)."""
    height, width = image_size
    x1, y1, x2, y2 = np.clip(np.round(box).astype(int), 0, [width - 1, height - 1, width - 1, height - 1])
    left, top = rng.integers(0, x1 + 1), rng.integers(0, y1 + 1)
    right, bottom = rng.integers(x2 + 1, width + 1), rng.integers(y2 + 1, height + 1)
    return np.array([left, top, right, bottom])


def _resize_view(image: np.ndarray, points: np.ndarray, box: np.ndarray, window: np.ndarray,
                 size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = window
    crop = image[y0:y1, x0:x1]
    scale = np.array([size / (x1 - x0), size / (y1 - y0)])
    resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    points = (points - [x0, y0] + 0.5) * scale - 0.5
    corners = (box.reshape(2, 2) - [x0, y0] + 0.5) * scale - 0.5
    return resized, points, corners.reshape(4)


@DATASETS.register_module()
class PairTrainingDataset(Dataset):
    """Training pairs from a pair dataset (see the module docstring).

    Args:
        dataset: config (or instance) of an SPair-layout pair dataset, e.g.
            ``dict(type='SPair71kDataset', data_root=..., split='trn', allow_unlabelled=True)``.
        size: side S of the network's square input (CATs: 256).
        crop_prob: probability of the box-keeping random crop, per image.
        labelled_fraction: share of the labelled pairs that keep their keypoints (seeded by
            ``labelled_seed``); 1 keeps all.
        max_keypoints: keypoints per image after padding (extra ones are dropped at random).
        unlabelled: keep the pairs without keypoints, or whose keypoints ``labelled_fraction`` took
            (semi-supervised training); False drops them (supervised training sees only labelled pairs).
        kinds: keep only pairs of these ``kind`` values ('exact', 'cross'; pairs without one count as
            'cross'); None keeps all.
        unmirror: read the target of a pair marked ``mirrored`` (its objects face opposite ways)
            mirrored left-right, keypoints and box with it, so that every training pair faces one way
            (facing is then left to the evaluation's flip mode).
    """

    def __init__(self, dataset: Union[dict, Dataset], size: int = 256, crop_prob: float = 0.5,
                 labelled_fraction: float = 1.0, labelled_seed: int = 0, max_keypoints: int = 32,
                 unlabelled: bool = True, kinds: Optional[Sequence[str]] = None, unmirror: bool = False) -> None:
        if not 0.0 <= crop_prob <= 1.0 or not 0.0 <= labelled_fraction <= 1.0:
            raise ValueError(f'PairTrainingDataset: crop_prob and labelled_fraction must be in [0, 1], got '
                             f'{crop_prob} and {labelled_fraction}')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.size = size
        self.crop_prob = crop_prob
        self.max_keypoints = max_keypoints
        self.unmirror = unmirror
        pairs = [self.dataset.get_data_info(index) for index in range(len(self.dataset))]
        if kinds is not None:
            pairs = [pair for pair in pairs if pair.get('kind', 'cross') in kinds]
        labelled = np.flatnonzero([len(pair['src_kps']) > 0 for pair in pairs])
        chosen = np.random.default_rng(labelled_seed).permutation(labelled)[:round(labelled_fraction * len(labelled))]
        keep = np.zeros(len(pairs), bool)
        keep[chosen] = True
        if not unlabelled:  # supervised training: only the pairs that keep their keypoints
            pairs, keep = [pair for pair, kept in zip(pairs, keep) if kept], keep[keep]
        if not pairs:
            raise ValueError(f'PairTrainingDataset: no {"" if unlabelled else "labelled "}pairs in the dataset')
        self.pairs: List[dict] = pairs
        self.labelled = keep

    @property
    def metainfo(self) -> dict:
        return dict(self.dataset.metainfo, labelled_pairs=int(self.labelled.sum()), pairs=len(self.pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def _view(self, path: str, points: np.ndarray, box: Optional[np.ndarray],
              mirror: bool = False) -> Tuple[np.ndarray, ...]:
        image = read_image(path)
        height, width = image.shape[:2]
        box = np.array([0, 0, width - 1, height - 1], np.float64) if box is None else np.asarray(box, np.float64)
        if mirror:
            image = np.ascontiguousarray(image[:, ::-1])
            points = np.stack([width - 1 - points[:, 0], points[:, 1]], axis=1)
            box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
        window = np.array([0, 0, width, height])
        if np.random.random() < self.crop_prob:
            window = crop_keeping_box(np.random.default_rng(np.random.randint(2 ** 31)), (height, width), box)
        return _resize_view(image, points, box, window, self.size)

    def _padded(self, points: np.ndarray, order: np.ndarray) -> np.ndarray:
        padded = np.full((self.max_keypoints, 2), np.nan, np.float32)
        chosen = points[order[:self.max_keypoints]]
        padded[:len(chosen)] = chosen
        return padded

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        labelled = bool(self.labelled[index])
        src_kps = np.asarray(pair['src_kps'], np.float64).reshape(-1, 2)
        trg_kps = np.asarray(pair['trg_kps'], np.float64).reshape(-1, 2)
        if not labelled:
            src_kps, trg_kps = src_kps[:0], trg_kps[:0]
        source, src_kps, src_box = self._view(pair['src_path'], src_kps, pair.get('src_bbox'))
        target, trg_kps, trg_box = self._view(pair['trg_path'], trg_kps, pair.get('trg_bbox'),
                                              self.unmirror and bool(pair.get('mirrored', False)))
        order = np.random.permutation(len(src_kps))
        images = np.stack([source, target])  # (2, S, S, 3)
        return dict(
            inputs=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            data_samples=dict(src_kps=torch.from_numpy(self._padded(src_kps, order)),
                              trg_kps=torch.from_numpy(self._padded(trg_kps, order)),
                              src_bbox=torch.as_tensor(src_box, dtype=torch.float32),
                              trg_bbox=torch.as_tensor(trg_box, dtype=torch.float32),
                              labelled=torch.tensor(labelled), pair_id=pair['pair_id']))


@FUNCTIONS.register_module()
def pair_training_collate(data_batch: Sequence[dict]) -> dict:
    """Stack :class:`PairTrainingDataset` samples: ``inputs`` (B, 2, 3, S, S) uint8 and ``data_samples``
    a dict of stacked fields (``pair_id`` a list)."""
    samples = [sample['data_samples'] for sample in data_batch]
    stacked = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0] if key != 'pair_id'}
    stacked['pair_id'] = [sample['pair_id'] for sample in samples]
    return dict(inputs=torch.stack([sample['inputs'] for sample in data_batch]), data_samples=stacked)
