"""The trainable pair matcher: CATs-lite, trained supervised (CATs) and semi-supervised (SemiMatch).

:class:`CATsMatchingModel` is a :class:`PairMatchingModel` whose matcher is learned: evaluation
(``tools/test.py``, the pair metric, the flip modes) and ``sfc-match`` run it as they run the
feature matchers, and the same features can still be matched without the network
(``set_matching(dict(method='kernel_soft_argmax'))``) for a like-for-like comparison.

Training (``tools/train.py`` with a :class:`PairTrainingDataset`): the query is the target image, the
reference the source (CATs' direction), both 256 x 256. Per step:

- supervised (CATs): the end-point error, in cells, of the soft-argmax flow of the weak target
  (photometric weak list; source likewise) against CATs' sparse keypoint flow labels, over the
  labelled pairs;
- with ``semimatch`` set (SemiMatch): pseudo-labels from the additional weak target (no photometric
  change), moved by a random affine + thin-plate-spline warp W; the strong target (photometric strong
  list, KeyOut, KeyMix, then W) is trained by the entropy-weighted cross-entropy on the masked cells
  (:mod:`sfc_plugin.correspondence.semimatch`), balanced dynamically against the supervised loss.

Every random draw of a step comes from a ``torch.Generator`` seeded by (``seed``, step, rank); the
step counter is the ``num_steps`` buffer, so ``--resume`` continues exactly.
"""
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from torch import Tensor

from sfc_plugin.registry import MODELS
from sfc_plugin.utils import image_tensor
from .augment import AffineTPSWarp, key_mix, key_out, strong_photometric, weak_photometric
from .cats import (CorrelationAggregator, cell_positions, endpoint_error, hyperpixel_maps, keypoint_flow_labels,
                   layer_correlations, mutual_nn_filter, soft_argmax)
from .matching import FeatureMap, MatchResult
from .model import PairMatchingModel
from .semimatch import balance, pseudo_labels, unsupervised_loss

__all__ = ['CATsMatchingModel', 'CATsFlowMatcher']

READOUTS = ('flow', 'row')
SEMIMATCH_DEFAULTS = dict(
    temperature=0.1,  # tau_c of the pseudo-label softmax (train_semimatch.py default)
    p_cutoff=0.5,  # confidence threshold (train_semimatch.py default, which run_spair.sh keeps)
    entropy_strength=1.5,  # lambda_H
    ce_temperature=0.1,  # tau_ct of the cross-entropy
    fb_check=True, fb_alpha1=0.1, fb_alpha2=0.5,
    keyout=0.2,  # KeyOut probability per target keypoint (run_spair.sh)
    keymix=0.0,  # KeyMix probability per keypoint pair (the official default; no shipped command sets it)
    dynamic=True,  # L_unsup <- L_unsup * L_sup / L_unsup
    weight=0.5)  # lambda_u when not dynamic


class CATsFlowMatcher:
    """The learned matcher as :meth:`PairMatchingModel.transfer` calls a matcher (source = query, target =
    reference). ``readout`` 'flow': a point moves by the network's flow field (the soft-argmax
    displacement of every cell) read bilinearly at its position, as CATs evaluates; 'row': the refined
    correlation rows of the cells around the point are interpolated bilinearly at its position and the
    point goes to that row's soft-argmax (as the feature matchers treat a point between cells). The score
    is the largest softmax probability of the row used."""
    box_prior_sigma = None

    def __init__(self, model: 'CATsMatchingModel') -> None:
        self.model = model

    def describe(self) -> Dict[str, object]:
        model = self.model
        return dict(method='cats', layers=list(model.layers), grid=model.grid, readout=model.readout,
                    softmax_temperature=model.softmax_temperature, kernel_sigma=model.kernel_sigma)

    @torch.no_grad()
    def __call__(self, source: FeatureMap, target: FeatureMap, points: np.ndarray, box_prior=None) -> MatchResult:
        model = self.model
        grid = model.grid
        points = np.asarray(points, np.float64).reshape(-1, 2)
        correlation = model.refine(model.split_layers(source.features), model.split_layers(target.features))
        height, width = source.image_size
        normalised = (points + 0.5) / [width, height] * 2 - 1  # align_corners=False
        grid_points = torch.as_tensor(normalised, dtype=correlation.dtype, device=correlation.device).view(1, 1, -1, 2)
        target_height, target_width = target.image_size
        if model.readout == 'row':
            rows = correlation[0].T.reshape(1, -1, grid, grid)  # (1, N_r, g, g) over query positions
            rows = F.grid_sample(rows, grid_points, mode='bilinear', padding_mode='border',
                                 align_corners=False)[0, :, 0].T[None]  # (1, K, N_r)
            target_cells = soft_argmax(rows, grid, model.softmax_temperature, model.kernel_sigma)[0]
            probability = torch.softmax(rows[0] / model.softmax_temperature, dim=-1)
            scores = probability.max(dim=1).values.double().cpu().numpy()
            target_cells = target_cells.double().cpu().numpy()
        else:
            flow = model.flow(correlation)[0].T.reshape(1, 2, grid, grid)  # displacement in cells
            displacement = F.grid_sample(flow, grid_points, mode='bilinear', padding_mode='border',
                                         align_corners=False)[0, :, 0].T.double().cpu().numpy()  # (K, 2)
            target_cells = (points + 0.5) / [width, height] * grid - 0.5 + displacement
            probability = torch.softmax(correlation / model.softmax_temperature, dim=-1)[0]  # (N_q, N_r)
            cell = np.clip(np.floor((points + 0.5) / [width, height] * grid), 0, grid - 1).astype(int)
            scores = probability.max(dim=1).values.double().cpu().numpy()[cell[:, 1] * grid + cell[:, 0]]
        predicted = (target_cells + 0.5) * [target_width / grid, target_height / grid] - 0.5
        return MatchResult(predicted, scores)


class CATsFeatures:
    """Image -> :class:`FeatureMap` of the per-layer hyperpixels, exactly as training computes them (the
    image resized to ``image_size`` squared); the map concatenates the L2-normalised layers and is
    normalised again (every layer keeps its direction; :meth:`CATsMatchingModel.split_layers` undoes it)."""

    def __init__(self, model: 'CATsMatchingModel') -> None:
        self.model = model
        self.layers = list(model.layers)
        self.max_side = None
        self.input_size = (model.image_size, model.image_size)

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> FeatureMap:
        model = self.model
        height, width = image.shape[:2]
        resized = cv2.resize(image, (model.image_size, model.image_size), interpolation=cv2.INTER_LINEAR)
        parameter = next(model.backbone.parameters())
        tensor = image_tensor(resized, parameter.device)
        maps = hyperpixel_maps(model.backbone, tensor, model.layers, model.grid)
        features = F.normalize(torch.cat(maps, dim=1), dim=1)[0]
        return FeatureMap(features, (height, width))


@MODELS.register_module()
class CATsMatchingModel(PairMatchingModel):
    """CATs-lite (:mod:`sfc_plugin.correspondence.cats`) as a trainable, evaluable pair model.

    Args:
        backbone: feature network (RGB in [0, 1]); frozen (eval mode, no gradient) unless
            ``train_backbone``.
        layers: backbone submodules whose outputs are the hyperpixels.
        grid: cells per side (CATs: 16); image_size: network input side (CATs: 256).
        aggregator: :class:`CorrelationAggregator` settings besides the channels and grid.
        matcher: ``dict(method='cats')`` (default) the network; another :class:`PairMatcher` setting
            (e.g. ``dict(method='kernel_soft_argmax')``) matches the same hyperpixels without it.
        softmax_temperature: beta of the soft-argmax flow (CATs: 0.02; SemiMatch's default 0.1).
        kernel_sigma: how matching reads the flow out: None CATs' plain soft-argmax; a std in cells SFNet's
            kernel soft-argmax (the refined correlation times a Gaussian around its argmax). Training
            always uses the plain soft-argmax, as CATs.
        readout: how a point is matched (:class:`CATsFlowMatcher`): 'flow' (CATs) or 'row'.
        mutual_filter: CATs' soft mutual-nearest-neighbour filter of the layer correlations; False feeds
            the aggregator the plain cosines (the untrained network is then the hyperpixel cosine).
        label_box: side in pixels of the box around a cell in which a keypoint labels it (CATs: 35).
        semimatch: None for supervised training only; else SemiMatch's settings over
            ``SEMIMATCH_DEFAULTS`` (a dict, possibly empty).
        seed: seed of the per-step augmentation generator.
        flip, flip_margin, protocol, out_dir, feature_cache: as :class:`PairMatchingModel`.
    """

    def __init__(self, backbone: dict, layers: Sequence[str], grid: int = 16, image_size: int = 256,
                 aggregator: Optional[dict] = None, matcher: Optional[dict] = None, softmax_temperature: float = 0.1,
                 kernel_sigma: Optional[float] = None, readout: str = 'flow', mutual_filter: bool = True,
                 label_box: float = 35.0,
                 semimatch: Optional[dict] = None, train_backbone: bool = False, seed: int = 0,
                 flip: str = 'off', flip_margin: float = 0.0, protocol: str = 'hpf', out_dir: Optional[str] = None,
                 feature_cache: int = 64, init_cfg: Optional[dict] = None) -> None:
        self.layers = list(layers)
        self.grid, self.image_size = grid, image_size
        self.softmax_temperature = softmax_temperature
        self.kernel_sigma = kernel_sigma
        self.mutual_filter = mutual_filter
        if readout not in READOUTS:
            raise ValueError(f'CATsMatchingModel: readout must be one of {", ".join(READOUTS)}, got {readout!r}')
        self.readout = readout
        super().__init__(backbone=backbone, matcher=matcher or dict(method='cats'), layers=layers, flip=flip,
                         flip_margin=flip_margin, protocol=protocol, out_dir=out_dir, feature_cache=feature_cache,
                         init_cfg=init_cfg)
        unknown = set(semimatch or {}) - set(SEMIMATCH_DEFAULTS)
        if unknown:
            raise ValueError(f'CATsMatchingModel: unknown semimatch settings {sorted(unknown)}; known: '
                             f'{sorted(SEMIMATCH_DEFAULTS)}')
        self.semimatch = None if semimatch is None else dict(SEMIMATCH_DEFAULTS, **semimatch)
        self.train_backbone = train_backbone
        self.label_box = label_box
        self.seed = seed
        self.extractor = CATsFeatures(self)
        channels = [maps.shape[1] for maps in self._probe_channels()]
        self.layer_channels = channels
        self.aggregator = CorrelationAggregator(channels, grid=grid, **(aggregator or {}))
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))
        if not train_backbone:
            self.backbone.requires_grad_(False)
        if self.method == 'cats':
            self.matcher = CATsFlowMatcher(self)

    def _probe_channels(self):
        with torch.no_grad():
            was_training = self.backbone.training
            self.backbone.eval()
            maps = hyperpixel_maps(self.backbone, torch.zeros(1, 3, self.image_size, self.image_size), self.layers,
                                   self.grid)
            self.backbone.train(was_training)
        return maps

    def set_matching(self, matcher: Optional[dict] = None, flip: str = 'off', flip_margin: float = 0.0) -> None:
        """``dict(method='cats')`` (default): the learned matcher; any other method matches the same
        hyperpixels without the network (as :class:`PairMatchingModel`)."""
        matcher = dict(matcher or {})
        if matcher.get('method', 'cats') != 'cats':
            super().set_matching(matcher, flip, flip_margin)
            return
        super().set_matching(dict(method='box_prior'), flip, flip_margin)  # checks the flip settings
        self.method = 'cats'
        self.matcher = CATsFlowMatcher(self) if hasattr(self, 'aggregator') else None

    def train(self, mode: bool = True) -> 'CATsMatchingModel':
        super().train(mode)
        if not self.train_backbone:
            self.backbone.eval()  # frozen: BatchNorm keeps its statistics
        return self

    def split_layers(self, features: Tensor) -> list:
        """A :class:`CATsFeatures` map (C, g, g) -> per-layer normalised maps, each (1, C_l, g, g)."""
        return [F.normalize(part[None], dim=1) for part in torch.split(features, self.layer_channels, dim=0)]

    def refine(self, query_maps: Sequence[Tensor], reference_maps: Sequence[Tensor]) -> Tensor:
        """The refined correlation (B, N_q, N_r) of per-layer hyperpixel maps."""
        correlation = layer_correlations(query_maps, reference_maps)
        if self.mutual_filter:
            correlation = mutual_nn_filter(correlation)
        return self.aggregator(correlation, query_maps, reference_maps)

    def flow(self, correlation: Tensor) -> Tensor:
        """Soft-argmax displacement (B, N_q, 2) in cells of every query cell, as matching reads it."""
        return (soft_argmax(correlation, self.grid, self.softmax_temperature, self.kernel_sigma)
                - cell_positions(self.grid, correlation.device))

    def _hyperpixels(self, images: Tensor) -> list:
        if self.train_backbone:
            return hyperpixel_maps(self.backbone, images, self.layers, self.grid)
        with torch.no_grad():
            return hyperpixel_maps(self.backbone, images, self.layers, self.grid)

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        """``loss``: the training losses of (B, 2, 3, S, S) uint8 pairs (``PairTrainingDataset``);
        ``tensor``: the backbone's features of (B, 3, H, W) images in [0, 1]."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)

    def _generator(self) -> torch.Generator:
        rank, world = get_dist_info()
        generator = torch.Generator()
        generator.manual_seed(((self.seed * 1_000_003 + int(self.num_steps)) * max(world, 1) + rank) % 2 ** 63)
        return generator

    def loss(self, inputs: Tensor, data_samples: dict) -> Dict[str, Tensor]:
        if inputs.dim() != 5 or inputs.shape[1] != 2 or tuple(inputs.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f'CATsMatchingModel.loss expects (B, 2, 3, {self.image_size}, {self.image_size}) pairs, '
                             f'got {tuple(inputs.shape)}')
        generator = self._generator()
        images = inputs.float() / 255
        source, target = images[:, 0], images[:, 1]
        src_kps, trg_kps = data_samples['src_kps'], data_samples['trg_kps']
        labelled = data_samples['labelled'].bool()

        weak_source = weak_photometric(source, generator)
        weak_target = weak_photometric(target, generator)
        source_maps = self._hyperpixels(weak_source)
        weak_correlation = self.refine(self._hyperpixels(weak_target), source_maps)
        labels, mask = keypoint_flow_labels(trg_kps, src_kps, self.image_size, self.grid, self.label_box)
        mask &= labelled[:, None]
        losses = dict(loss_sup=endpoint_error(weak_correlation, labels, mask, self.grid, self.softmax_temperature))
        if self.semimatch is not None:
            losses.update(self._semimatch_losses(source, target, source_maps, data_samples, losses['loss_sup'],
                                                 generator))
        self.num_steps += 1
        return losses

    def _semimatch_losses(self, source: Tensor, target: Tensor, source_maps: list, data_samples: dict,
                          supervised: Tensor, generator: torch.Generator) -> Dict[str, Tensor]:
        settings = self.semimatch
        with torch.no_grad():
            additional = self.refine(self._hyperpixels(target), source_maps)
        warp = AffineTPSWarp.random(target.shape[0], generator)
        strong = strong_photometric(target, generator)
        strong = key_out(strong, data_samples['trg_kps'], data_samples['trg_bbox'], generator, p=settings['keyout'])
        strong_source_maps = source_maps
        if settings['keymix'] > 0:
            mixed_source, strong = key_mix(source, strong, data_samples['src_kps'], data_samples['trg_kps'],
                                           generator, p=settings['keymix'])
            strong_source_maps = self._hyperpixels(weak_photometric(mixed_source, generator))
        strong = warp.warp(strong)
        strong_correlation = self.refine(self._hyperpixels(strong), strong_source_maps)
        labels = pseudo_labels(additional, warp, self.grid, self.image_size, data_samples['src_bbox'],
                               data_samples['trg_bbox'], settings['temperature'], settings['p_cutoff'],
                               settings['entropy_strength'], settings['fb_alpha1'], settings['fb_alpha2'],
                               settings['fb_check'])
        unsupervised = unsupervised_loss(strong_correlation, labels, settings['ce_temperature'])
        unsupervised = balance(supervised, unsupervised) if settings['dynamic'] else settings['weight'] * unsupervised
        return dict(loss_unsup=unsupervised, pseudo_label_share=labels.mask.float().mean().detach())
