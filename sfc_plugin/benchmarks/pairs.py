"""PCK of several configs x matchers on one pair dataset, each image's features computed once per config.

What ``tools/benchmark_pairs.py`` runs: the same dataset class, model, matchers and PCK as
``tools/test.py CONFIG --cfg-options model.matcher.method=M``, without a Runner per combination; the rows
printed as a table, and the machine they were measured on.
"""
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.registry import DefaultScope

from sfc_plugin.apis.inference import load_config
from sfc_plugin.correspondence.matching import PairMatcher
from sfc_plugin.correspondence.model import PairMatchingModel
from sfc_plugin.correspondence.pck import pck_hits, summarize_pck
from sfc_plugin.models.weight_init import init_weights_quietly
from sfc_plugin.registry import DATASETS, SCOPE
from .common import cpu_model

ALPHAS = (0.05, 0.1, 0.15)


def _build(config: str, data_root: Optional[str], layers: Optional[Sequence[str]]):
    cfg = load_config(config)
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    if data_root is not None:
        dataset_cfg['data_root'] = data_root
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', SCOPE)):
        dataset = DATASETS.build(dataset_cfg)
        torch.manual_seed(0)  # the same random initialisation for configs without weights
        model = PairMatchingModel(backbone=cfg.model.backbone, input_size=cfg.model.get('input_size'),
                                  max_side=cfg.model.get('max_side'), feature_stride=cfg.model.get('feature_stride'),
                                  layers=layers or cfg.model.get('layers'), feature_cache=2 ** 31)
        init_weights_quietly(model)
    reference = cfg.test_evaluator.reference
    return dataset, model.eval(), reference if isinstance(reference, str) else reference[0]


def benchmark_pairs(configs: Sequence[str], matchers: Sequence[str], data_root: Optional[str] = None,
                    layers: Optional[Sequence[str]] = None,
                    groups: Optional[Dict[str, Sequence[str]]] = None) -> List[dict]:
    """One row per (config, matcher): per-pair PCK in percent at ``ALPHAS`` overall and per group.

    Args:
        configs: pair configs (``configs/pair/*.py``); their models are initialised by their init_cfg.
        matchers: ``PairMatcher`` methods.
        data_root: overrides the configs' dataset root.
        layers: hyperpixel layers for every config (None: each config's own).
        groups: name -> categories, reported besides 'all'.
    """
    rows = []
    for config in configs:
        dataset, model, reference = _build(config, data_root, layers)
        start = time.perf_counter()
        with torch.no_grad():  # every image's features, once
            cache = {path: model.features(path) for index in range(len(dataset))
                     for path in (dataset[index]['src_path'], dataset[index]['trg_path'])}
        feature_seconds = time.perf_counter() - start
        for method in matchers:
            matcher = PairMatcher(method)
            start = time.perf_counter()
            records = []
            for index in range(len(dataset)):
                sample = dataset[index]
                known = sample['valid']
                predicted = np.full_like(sample['src_kps'], np.nan)
                predicted[known] = matcher(cache[sample['src_path']], cache[sample['trg_path']],
                                           sample['src_kps'][known]).points
                sizes = dict(sample['pck_sizes'], image=float(max(cache[sample['trg_path']].image_size)))
                records.append(dict(category=sample['category'], hits=pck_hits(
                    predicted, sample['trg_kps'], sample['valid'], sizes[reference], ALPHAS)))
            row = dict(config=config, matcher=method, layers=model.extractor.layers, reference=reference,
                       pairs=len(records), feature_seconds=round(feature_seconds, 1),
                       match_seconds=round(time.perf_counter() - start, 1))
            for name, categories in {'all': None, **(groups or {})}.items():
                chosen = [record for record in records if categories is None or record['category'] in categories]
                if chosen:
                    summary = summarize_pck(chosen, ALPHAS)['all']
                    row[name] = {f'PCK@{alpha:g}': round(100 * float(value), 4)
                                 for alpha, value in zip(ALPHAS, summary['pair'])}
            rows.append(row)
    return rows


def markdown_table(rows: List[dict], groups: Sequence[str]) -> str:
    """The rows of :func:`benchmark_pairs` as a Markdown table: PCK (%) at ``ALPHAS`` per group ('-' where a
    group has no pair)."""
    header = ['config', 'matcher'] + [f'{group} PCK@{alpha:g}' for group in groups for alpha in ALPHAS]
    lines = ['| ' + ' | '.join(header) + ' |\n|' + ' --- |' * len(header)]
    for row in rows:
        cells = [row['config'], row['matcher'] + (' + hyperpixels' if row['layers'] else '')]
        for group in groups:
            cells += [f'{row[group][f"PCK@{alpha:g}"]:.1f}' if group in row else '-' for alpha in ALPHAS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def machine(threads: int) -> dict:
    """When and on which CPU the rows were measured, with ``threads`` torch threads."""
    return dict(date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), cpu=cpu_model(),
                cpu_capability=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, threads=threads)
