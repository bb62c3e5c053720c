"""The image-pair evaluation model: a correspondence backbone and a matcher, run by ``tools/test.py``.

Two evaluation protocols (``protocol``):

- 'hpf' (HPF, SCOT): the source keypoints are transferred to the target image at its original
  resolution; PCK thresholds come from the target (its box, image or keypoints' box).
- 'cats' (CATs, SemiMatch): both images resized to 256 x 256; the TARGET keypoints are transferred
  to the SOURCE image and compared with the source keypoints in the 256 x 256 frame; thresholds
  come from the source: 'bbox' the max side of the source box, 'image' 256, 'kps_bbox' the max
  side of the source keypoints' box (all in the 256 x 256 frame).

Besides the feature matchers of :class:`PairMatcher`, ``method='box_prior'`` is a baseline that
uses the annotated boxes instead of features: a keypoint keeps its relative position from the
source box to the target box, mirrored when the pair is judged to face opposite ways. Whether the
target is mirrored (``flip``) is, for every method: 'off' never; 'annotated' the sample's
``mirrored`` field (the project's own pair sets write it); 'auto' decided from the features
(:func:`orientation_score` of the target and of its mirror; the matchers then match against the
better one and map the predictions back).
"""
import os
from collections import OrderedDict
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import Tensor

from sfc_plugin.registry import MODELS
from sfc_plugin.utils import read_image, write_json
from .matching import (MATCHERS, BoxPrior, FeatureExtractor, FeatureMap, PairMatcher, mirror_box, mirror_points,
                       orientation_score)

METHODS = MATCHERS + ('box_prior',)
FLIP_MODES = ('off', 'annotated', 'auto')
PROTOCOLS = ('hpf', 'cats')
CATS_SIZE = 256  # CATs' evaluation frame, pixels


def _native(points: np.ndarray, origin: int) -> list:
    """(K, 2) 0-based points -> JSON list in the dataset's convention (None where not a number)."""
    return [[float(x) + origin, float(y) + origin] if np.isfinite([x, y]).all() else None for x, y in points]


class Transfer(NamedTuple):
    """Points transferred by :meth:`PairMatchingModel.transfer`: (K, 2) target pixels (NaN: none), (K,)
    scores (NaN for the box prior), whether the target was matched mirrored, and the two orientation
    scores of the 'auto' flip mode (as is, mirrored; None otherwise)."""
    points: np.ndarray
    scores: np.ndarray
    target_mirrored: bool
    orientation_scores: Optional[Tuple[float, float]]


def _box_side(points: np.ndarray) -> float:
    finite = points[np.isfinite(points).all(axis=1)]
    return float((finite.max(axis=0) - finite.min(axis=0)).max()) if len(finite) else float('nan')


@MODELS.register_module()
class PairMatchingModel(BaseModel):
    """Transfer each pair's keypoints between its images (SPair-71k, PF-PASCAL, PF-WILLOW).

    Checkpoint keys are ``backbone.*``, as in ``PropagationModel``: the same converted or trained
    checkpoints load here.

    Args:
        backbone: config of the feature network (RGB in [0, 1] in, feature map out; e.g. ``SFCBackbone``).
        matcher: :class:`PairMatcher` settings, e.g. ``dict(method='soft_argmax')``, or
            ``dict(method='box_prior')`` for the box-prior baseline (other settings are ignored).
        input_size, max_side, feature_stride, layers, hyperpixels: :class:`FeatureExtractor` settings.
        flip: 'off', 'annotated' or 'auto' (see the module docstring).
        flip_margin: 'auto' matches the mirrored target only when its orientation score exceeds the
            other's by more than this: symmetric objects score about the same both ways, and their
            left and right keypoints are named by the image side, so a coin-toss mirroring costs them.
        protocol: 'hpf' or 'cats' (see the module docstring); 'cats' resizes every image to
            256 x 256 before the network, so it takes neither ``input_size`` nor ``max_side``.
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
                 hyperpixels: str = 'per_layer',
                 flip: str = 'off',
                 flip_margin: float = 0.0,
                 protocol: str = 'hpf',
                 out_dir: Optional[str] = None,
                 feature_cache: int = 64,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if protocol not in PROTOCOLS:
            raise ValueError(f'PairMatchingModel: protocol must be one of {", ".join(PROTOCOLS)}, got {protocol!r}')
        if protocol == 'cats':
            if max_side is not None or (input_size is not None and tuple(input_size) != (CATS_SIZE, CATS_SIZE)):
                raise ValueError(f"PairMatchingModel: protocol='cats' runs the network on {CATS_SIZE} x {CATS_SIZE} "
                                 f'images; set max_side=None and input_size=None (got max_side={max_side}, '
                                 f'input_size={input_size})')
            input_size = (CATS_SIZE, CATS_SIZE)
        self.set_matching(matcher, flip, flip_margin)
        self.backbone = MODELS.build(backbone)
        self.extractor = FeatureExtractor(self.backbone, input_size, max_side, feature_stride, layers, hyperpixels)
        self.protocol = protocol
        self.out_dir = out_dir
        self.feature_cache = feature_cache
        self._cache: 'OrderedDict[Tuple[str, bool], FeatureMap]' = OrderedDict()

    def set_matching(self, matcher: Optional[dict] = None, flip: str = 'off', flip_margin: float = 0.0) -> None:
        """Use another matcher (``PairMatcher`` settings or ``dict(method='box_prior')``) and flip mode
        with the same network and feature cache."""
        if flip not in FLIP_MODES:
            raise ValueError(f'PairMatchingModel: flip must be one of {", ".join(FLIP_MODES)}, got {flip!r}')
        matcher = dict(matcher or {})
        self.method = matcher.get('method', 'nn')
        if self.method == 'box_prior':  # the matchers' settings (e.g. a config's ot_exp2) do not apply
            self.matcher = None
        else:
            self.matcher = PairMatcher(**matcher)
        self.flip = flip
        self.flip_margin = flip_margin

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
        """Predicted keypoints of one pair (K, 2), 0-based pixels (NaN: none), and what PCK needs.

        Under 'hpf' the source keypoints go to the target ('pred_kps' vs 'trg_kps', target pixels);
        under 'cats' the target keypoints go to the source and both are in the 256 x 256 frame of the
        source (the 'trg_kps' the metric compares with are then the source keypoints)."""
        cats = self.protocol == 'cats'
        start, end = ('trg', 'src') if cats else ('src', 'trg')
        from_kps = np.asarray(sample[f'{start}_kps'], np.float64)
        truth = np.asarray(sample[f'{end}_kps'], np.float64)
        from_box, to_box = sample.get(f'{start}_bbox'), sample.get(f'{end}_bbox')
        flipped = bool(sample.get('flip', False))  # both images mirrored by the loader (PF-PASCAL trn)
        to_path = sample[f'{end}_path']
        known = np.isfinite(from_kps).all(axis=1)
        predicted = np.full_like(from_kps, np.nan)
        scores = np.full(len(from_kps), np.nan)

        source = self.features(sample[f'{start}_path'], flipped)
        target = self.features(to_path, flipped)
        transfer = self.transfer(source, target, lambda: self.features(to_path, not flipped), from_kps[known],
                                 from_box, to_box, bool(sample.get('mirrored', False)), name=f'pair {sample["pair_id"]}')
        predicted[known], scores[known] = transfer.points, transfer.scores
        mirrored, orientation = transfer.target_mirrored, transfer.orientation_scores

        if cats:
            height, width = target.image_size
            scale = np.array([CATS_SIZE / width, CATS_SIZE / height])
            predicted, truth = predicted * scale, truth * scale
            pck_sizes = dict(image=float(CATS_SIZE), kps_bbox=_box_side(truth))
            if to_box is not None:
                box = np.asarray(to_box, np.float64).reshape(2, 2) * scale
                pck_sizes['bbox'] = float((box[1] - box[0]).max())
        else:
            pck_sizes = dict(sample['pck_sizes'], image=float(max(target.image_size)))
        result = dict(pair_id=sample['pair_id'], category=sample['category'], pred_kps=predicted, trg_kps=truth,
                      valid=np.asarray(sample['valid'], bool), scores=scores, pck_sizes=pck_sizes,
                      difficulty=sample.get('difficulty', {}), trg_size=tuple(target.image_size),
                      target_mirrored=bool(mirrored), orientation_scores=orientation)
        if self.out_dir is not None:
            self._write(sample, result)
        return result

    def transfer(self, source: FeatureMap, target: FeatureMap, mirrored_target: Callable[[], FeatureMap],
                 points: np.ndarray, source_box: Optional[np.ndarray] = None, target_box: Optional[np.ndarray] = None,
                 annotated_mirrored: bool = False, name: str = 'the pair') -> Transfer:
        """Transfer ``points`` (K, 2) of the source to the target with this model's method and flip mode.

        ``mirrored_target`` gives the features of the target mirrored left-right (called only when the
        flip mode needs them); ``annotated_mirrored`` is what the 'annotated' mode believes; the boxes
        (x1, y1, x2, y2) are needed by the box prior and the soft box prior, and sharpen the 'auto'
        orientation test (without them it compares the whole images). ``name`` names the pair in errors."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        width = target.image_size[1]
        mirrored, orientation = False, None
        if self.flip == 'annotated':
            mirrored = annotated_mirrored
        elif self.flip == 'auto':
            mirror_box_ = mirror_box(np.asarray(target_box, np.float64), width) if target_box is not None else None
            orientation = (orientation_score(source, target, source_box, target_box),
                           orientation_score(source, mirrored_target(), source_box, mirror_box_))
            mirrored = orientation[1] > orientation[0] + self.flip_margin
        if self.method == 'box_prior':
            prior = self._box_prior(name, source_box, target_box, mirrored)
            return Transfer(prior.transfer(points), np.full(len(points), np.nan), mirrored, orientation)
        if len(points) == 0:
            return Transfer(np.zeros((0, 2)), np.zeros(0), mirrored, orientation)
        prior = None
        if self.matcher.box_prior_sigma is not None:
            prior = self._box_prior(name, source_box, target_box, False)
            if mirrored:  # matching the mirrored target, where the objects face the same way
                prior.trg_box = mirror_box(prior.trg_box, width)
        match = self.matcher(source, mirrored_target() if mirrored else target, points, prior)
        return Transfer(mirror_points(match.points, width) if mirrored else match.points, match.scores, mirrored,
                        orientation)

    @staticmethod
    def _box_prior(name: str, source_box, target_box, mirrored: bool) -> BoxPrior:
        if source_box is None or target_box is None:
            raise ValueError(f'{name}: the box prior needs the object boxes of both images (src_bbox, trg_bbox); '
                             'none was given')
        return BoxPrior(np.asarray(source_box, np.float64), np.asarray(target_box, np.float64), bool(mirrored))

    def features(self, path: str, mirrored: bool = False) -> FeatureMap:
        """The :class:`FeatureMap` of an image file (left-right mirrored if asked), from the cache when
        it was read recently."""
        key = (path, bool(mirrored))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = read_image(path)
        features = self.extractor(np.ascontiguousarray(image[:, ::-1]) if mirrored else image)
        if self.feature_cache > 0:
            self._cache[key] = features
            while len(self._cache) > self.feature_cache:
                self._cache.popitem(last=False)
        return features

    def _write(self, sample: dict, result: dict) -> None:
        settings = dict(flip=self.flip, protocol=self.protocol,
                        target_mirrored=result['target_mirrored'], orientation_scores=result['orientation_scores'])
        scores = [None if not np.isfinite(s) else float(s) for s in result['scores']]
        record = dict(pair_id=sample['pair_id'], category=sample['category'], src_image=sample['src_path'],
                      trg_image=sample['trg_path'], image_flipped=bool(sample.get('flip', False)))
        if self.protocol == 'cats':
            record.update(
                coordinate_origin=0, frame=[CATS_SIZE, CATS_SIZE],
                note=f'target keypoints transferred to the source; x, y pixels of the source image resized to '
                     f'{CATS_SIZE} x {CATS_SIZE}, 0-based; null: no prediction',
                pred_src_kps=_native(result['pred_kps'], 0), src_kps=_native(result['trg_kps'], 0))
        else:
            origin = int(sample.get('coordinate_origin', 0))
            record.update(
                coordinate_origin=origin,
                note=f'x, y pixels of the target image, {origin}-based as the dataset files; null: no prediction',
                pred_trg_kps=_native(result['pred_kps'], origin), trg_kps=_native(result['trg_kps'], origin))
        record.update(valid=result['valid'].tolist(), scores=scores, pck_sizes=result['pck_sizes'],
                      difficulty=result['difficulty'], matcher=self.method, **settings)
        write_json(os.path.join(self.out_dir, f'{sample["pair_id"]}.json'), record)
