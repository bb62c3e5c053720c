"""The image-pair evaluation model: a correspondence backbone and a matcher, run by ``tools/test.py``."""
import json
import os
from collections import OrderedDict
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import Tensor

from sfc_plugin.registry import MODELS
from sfc_plugin.utils import atomic_path, read_image
from .matching import FeatureExtractor, FeatureMap, PairMatcher


def _native(points: np.ndarray, origin: int) -> list:
    """(K, 2) 0-based points -> JSON list in the dataset's convention (None where not a number)."""
    return [[float(x) + origin, float(y) + origin] if np.isfinite([x, y]).all() else None for x, y in points]


@MODELS.register_module()
class PairMatchingModel(BaseModel):
    """Transfer each pair's source keypoints to the target image (SPair-71k, PF-PASCAL, PF-WILLOW).

    Checkpoint keys are ``backbone.*``, as in ``PropagationModel``: the same converted or trained
    checkpoints load here.

    Args:
        backbone: config of the feature network (RGB in [0, 1] in, feature map out; e.g. ``SFCBackbone``).
        matcher: :class:`PairMatcher` settings, e.g. ``dict(method='soft_argmax')``.
        input_size, max_side, feature_stride, layers: :class:`FeatureExtractor` settings.
        out_dir: if set, each pair's predictions are written to ``out_dir/<pair_id>.json``.
        feature_cache: keep the features of this many recent images (benchmarks list each image in
            many pairs, grouped by category); 0 disables the cache.
    """

    def __init__(self,
                 backbone: dict,
                 matcher: Optional[dict] = None,
                 input_size: Optional[Sequence[int]] = None,
                 max_side: Optional[int] = None,
                 feature_stride: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None,
                 out_dir: Optional[str] = None,
                 feature_cache: int = 64,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.matcher = PairMatcher(**(matcher or {}))
        self.extractor = FeatureExtractor(self.backbone, input_size, max_side, feature_stride, layers)
        self.out_dir = out_dir
        self.feature_cache = feature_cache
        self._cache: 'OrderedDict[str, FeatureMap]' = OrderedDict()

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor') -> Tensor:
        """Features of a batch of RGB images in [0, 1], (B, 3, H, W) -> (B, C, h, w)."""
        if mode != 'tensor':
            raise ValueError(f'PairMatchingModel only evaluates (test_step); got mode {mode!r}')
        return self.backbone(inputs)

    @torch.no_grad()
    def test_step(self, data: List[dict]) -> List[dict]:
        """Match each pair sample of the batch (see ``sfc_plugin.correspondence.datasets``)."""
        self.eval()
        return [self.match_pair(sample) for sample in data]

    val_step = test_step

    def match_pair(self, sample: dict) -> dict:
        """Predicted target keypoints (K, 2) of one pair, 0-based pixels (NaN: none), and what PCK needs."""
        src_kps = np.asarray(sample['src_kps'], np.float64)
        known = np.isfinite(src_kps).all(axis=1)
        predicted = np.full_like(src_kps, np.nan)
        scores = np.full(len(src_kps), np.nan)
        source, target = self.features(sample['src_path']), self.features(sample['trg_path'])
        if known.any():
            match = self.matcher(source, target, src_kps[known])
            predicted[known], scores[known] = match.points, match.scores
        pck_sizes = dict(sample['pck_sizes'], image=float(max(target.image_size)))
        result = dict(pair_id=sample['pair_id'], category=sample['category'], pred_kps=predicted,
                      trg_kps=np.asarray(sample['trg_kps'], np.float64), valid=np.asarray(sample['valid'], bool),
                      scores=scores, pck_sizes=pck_sizes, difficulty=sample.get('difficulty', {}),
                      trg_size=tuple(target.image_size))
        if self.out_dir is not None:
            self._write(sample, result)
        return result

    def features(self, path: str) -> FeatureMap:
        """The :class:`FeatureMap` of an image file, from the cache when it was read recently."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        features = self.extractor(read_image(path))
        if self.feature_cache > 0:
            self._cache[path] = features
            while len(self._cache) > self.feature_cache:
                self._cache.popitem(last=False)
        return features

    def _write(self, sample: dict, result: dict) -> None:
        origin = int(sample.get('coordinate_origin', 0))
        record = dict(
            pair_id=sample['pair_id'], category=sample['category'], src_image=sample['src_path'],
            trg_image=sample['trg_path'], coordinate_origin=origin,
            note=f'x, y pixels of the target image, {origin}-based as the dataset files; null: no prediction',
            pred_trg_kps=_native(result['pred_kps'], origin), trg_kps=_native(result['trg_kps'], origin),
            valid=result['valid'].tolist(), scores=[None if not np.isfinite(s) else float(s) for s in result['scores']],
            pck_sizes=result['pck_sizes'], difficulty=result['difficulty'],
            matcher=self.matcher.method)
        with atomic_path(os.path.join(self.out_dir, f'{sample["pair_id"]}.json')) as tmp:
            with open(tmp, 'w') as file:
                json.dump(record, file, indent=1)
