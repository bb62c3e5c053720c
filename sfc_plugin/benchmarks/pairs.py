"""PCK of pair matching: a grid of settings on one pair dataset, or any configs' features on a stereo pair.

What ``tools/benchmark_pairs.py`` runs. :func:`benchmark_pairs`, for benchmarking and for choosing
settings on a tune split: the configs' dataset and ``PairMatchingModel.match_pair`` (the code
``tools/test.py`` runs) for every combination of config x hyperpixel layers x input size (one model each,
its feature cache kept) x matcher x flip mode, scored with the same PCK as ``PairPCKMetric``. Rows hold
per-pair PCK (%) overall, per named group, per category and the mean over categories (the score that
weighs a category with few pairs like one with many, used to choose settings).

:func:`benchmark_stereo_pck` (``--stereo``): the nearest-neighbour PCK in pixels of any configs' feature
networks (e.g. the VOS evaluation configs) on scikit-image's ``stereo_motorcycle`` pair, whose keypoints
come from its ground-truth disparity (:func:`sfc_plugin.correspondence.stereo.stereo_pck`).
"""
import itertools
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.registry import DefaultScope

from sfc_plugin.apis.inference import build_model, load_config
from sfc_plugin.correspondence.model import PairMatchingModel
from sfc_plugin.correspondence.pck import pck_hits, summarize_pck
from sfc_plugin.correspondence.stereo import stereo_pck
from sfc_plugin.models.weight_init import init_weights_quietly
from sfc_plugin.registry import DATASETS, MODELS, SCOPE
from sfc_plugin.utils import load_model_weights

ALPHAS = (0.05, 0.1, 0.15)
STEREO_PAIR = 'skimage.data.stereo_motorcycle (500x741, ground-truth disparity)'


def _percent(values: Sequence[float]) -> Dict[str, float]:
    return {f'PCK@{alpha:g}': round(100 * float(value), 4) for alpha, value in zip(ALPHAS, values)}


def _build(config: str, checkpoint: Optional[str], data_root: Optional[str], split: Optional[str],
           layers: Optional[Sequence[str]], max_side: Optional[int], cfg_options: Optional[dict]):
    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    if data_root is not None:
        dataset_cfg['data_root'] = data_root
    if split is not None:
        dataset_cfg['split'] = split
    model_cfg = {key: value for key, value in cfg.model.items() if key not in ('type', 'out_dir')}
    if layers is not None:
        model_cfg['layers'] = list(layers) or None
    if max_side is not None:
        model_cfg.update(max_side=max_side, input_size=None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', SCOPE)):
        dataset = DATASETS.build(dataset_cfg)
        model_type = MODELS.get(cfg.model['type'])
        if not (isinstance(model_type, type) and issubclass(model_type, PairMatchingModel)):
            raise ValueError(f'{config}: model type {cfg.model["type"]} is not a PairMatchingModel')
        torch.manual_seed(0)  # the same random initialisation for configs without weights
        model = model_type(**dict(model_cfg, feature_cache=2 ** 31))
        if checkpoint is None:
            init_weights_quietly(model)
        else:
            load_model_weights(model, checkpoint)
    reference = cfg.test_evaluator.reference
    return dataset, model.eval(), reference if isinstance(reference, str) else reference[0], dict(cfg.model.get(
        'matcher') or {}), cfg.model.get('flip_margin', 0.0)


def benchmark_pairs(configs: Sequence[str], matchers: Sequence[str], checkpoints: Optional[Sequence[Optional[str]]] = None,
                    data_root: Optional[str] = None,
                    split: Optional[str] = None, layer_sets: Sequence[Optional[Sequence[str]]] = (None,),
                    max_sides: Sequence[Optional[int]] = (None,), flips: Sequence[str] = ('off',),
                    flip_margins: Sequence[Optional[float]] = (None,), groups: Optional[Dict[str, Sequence[str]]] = None,
                    cfg_options: Optional[dict] = None) -> List[dict]:
    """One row per combination: per-pair PCK in percent at ``ALPHAS``.

    Args:
        configs: pair configs (``configs/pair/*.py``, or a trained matcher's config).
        matchers: methods of ``PairMatchingModel`` (the ``PairMatcher`` ones and ``box_prior``; 'cats':
            a ``CATsMatchingModel``'s network); each keeps the config's other matcher settings (e.g. its
            OT-RHM exponent).
        checkpoints: one per config (None: the model is initialised by its init_cfg), loaded strictly.
        data_root, split: override the configs' dataset root and split.
        layer_sets: hyperpixel layer lists to try (None: the config's; an empty list: the backbone's output).
        max_sides: longer sides to resize images to (None: the config's input size).
        flips: ``PairMatchingModel`` flip modes to try.
        flip_margins: margins of the 'auto' flip mode to try (None: the config's).
        groups: name -> categories, reported besides 'all'.
        cfg_options: overrides applied to every config (as ``--cfg-options``).
    """
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * len(configs)
    if len(checkpoints) != len(configs):
        raise ValueError(f'benchmark_pairs: {len(checkpoints)} checkpoints for {len(configs)} configs')
    rows = []
    for (config, checkpoint), layers, max_side in itertools.product(zip(configs, checkpoints), layer_sets, max_sides):
        dataset, model, reference, config_matcher, config_margin = _build(config, checkpoint, data_root, split, layers,
                                                                          max_side, cfg_options)
        samples = [dataset[index] for index in range(len(dataset))]
        start = time.perf_counter()
        with torch.no_grad():  # every image's features once (and its mirror's, when a flip mode needs it)
            for sample in samples:
                for path in (sample['src_path'], sample['trg_path']):
                    model.features(path)
                    if 'auto' in flips:
                        model.features(path, True)
        feature_seconds = time.perf_counter() - start
        variants = [(method, flip, config_margin if margin is None else margin)
                    for method, flip in itertools.product(matchers, flips)
                    for margin in (flip_margins if flip == 'auto' else (None,))]
        for method, flip, margin in variants:
            model.set_matching(dict(config_matcher, method=method), flip, margin)
            start = time.perf_counter()
            records = []
            with torch.no_grad():
                for sample in samples:
                    result = model.match_pair(sample)
                    hits = pck_hits(result['pred_kps'], result['trg_kps'], result['valid'],
                                    result['pck_sizes'][reference], ALPHAS)
                    records.append(dict(category=sample['category'], hits=hits))
            summary = summarize_pck(records, ALPHAS)
            categories = sorted(key.split('/', 1)[1] for key in summary if key.startswith('category/'))
            row = dict(config=config, checkpoint=checkpoint, matcher=method, flip=flip if flip != 'auto' else f'auto, margin {margin:g}', layers=model.extractor.layers,
                       max_side=model.extractor.max_side, reference=reference, pairs=len(records),
                       feature_seconds=round(feature_seconds, 1), match_seconds=round(time.perf_counter() - start, 1),
                       all=_percent(summary['all']['pair']),
                       categories={name: _percent(summary[f'category/{name}']['pair']) for name in categories},
                       category_mean=_percent(np.mean([summary[f'category/{name}']['pair'] for name in categories],
                                                      axis=0)))
            for name, members in (groups or {}).items():
                chosen = [record for record in records if record['category'] in members]
                if chosen:
                    row[name] = _percent(summarize_pck(chosen, ALPHAS)['all']['pair'])
            rows.append(row)
    return rows


def benchmark_stereo_pck(configs: Sequence[str], thresholds: Sequence[float] = (4, 8, 16),
                         cfg_options: Optional[dict] = None) -> List[dict]:
    """One row per config on :data:`STEREO_PAIR`: ``{'config', 'PCK@4px', ...}`` (%; the configs' models
    are initialised by their init_cfg, as ``tools/test.py`` does without a checkpoint; seed 0 for each)."""
    from skimage import data
    left, right, disparity = data.stereo_motorcycle()
    rows = []
    for config in configs:
        torch.manual_seed(0)  # the same random initialisation for configs without weights
        model, _ = build_model(config, cfg_options=cfg_options)
        pck = stereo_pck(model.backbone, left, right, disparity, thresholds)
        rows.append(dict(config=config, **{f'PCK@{t:g}px': round(100 * value, 2) for t, value in pck.items()}))
    return rows
