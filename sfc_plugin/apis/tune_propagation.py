"""Grid search of the fusion weight and the propagation settings on DAVIS-layout tune sets.

Each branch's features are computed once per frame and kept; every grid point then fuses them with
``SFCBackbone.fuse`` and runs the evaluation model's own ``propagate_video`` (the one propagation
core) and ``DAVISMetric``: the same numbers ``tools/test.py`` prints for that config, at the cost of
one backbone pass per frame for the whole grid.
"""
import hashlib
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from torch import nn

from sfc_plugin.evaluation.metrics.davis import DAVISMetric
from sfc_plugin.registry import DATASETS, SCOPE


class CachedBranches(nn.Module):
    """Wraps an ``SFCBackbone``: branch features are computed once per distinct input image and
    fused with the current ``fine_grained_weight`` on every call."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.stride = backbone.stride
        self.fine_grained_weight = backbone.fine_grained_weight
        self.cache: Dict[str, Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha1(images.detach().cpu().numpy().tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.backbone.branch_features(images)
        self.backbone.fine_grained_weight = self.fine_grained_weight
        return self.backbone.fuse(*self.cache[key])


def evaluate_davis_layout(model: nn.Module, cfg: Config, data_root: str) -> Dict[str, float]:
    """J&F of ``model`` (a PropagationModel) on the DAVIS-layout folder ``data_root``."""
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    dataset_cfg['data_root'] = data_root
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', SCOPE)):
        dataset = DATASETS.build(dataset_cfg)
    metric = DAVISMetric()
    with torch.no_grad():
        results = [model.propagate_video(dataset[index]) for index in range(len(dataset))]
    metric.process(None, results)
    return metric.compute_metrics(metric.results)


def tune_grid(model: nn.Module, cfg: Config, data_roots: Sequence[str], fine_grained_weights: Sequence[float],
              settings: Sequence[dict]) -> List[dict]:
    """J&F of every (fusion weight, propagation settings) pair on every tune set.

    ``settings`` are dicts of :class:`PropagationSettings` fields that replace the model's. Returns
    rows ``dict(data_root, fine_grained_weight, settings, **metrics)``.
    """
    base_settings = model.settings
    cached = CachedBranches(model.backbone)
    model.backbone = cached
    rows = []
    try:
        for data_root, weight, setting in itertools.product(data_roots, fine_grained_weights, settings):
            cached.fine_grained_weight = float(weight)
            model.settings = base_settings.replace(**setting)
            metrics = evaluate_davis_layout(model, cfg, data_root)
            rows.append(dict(data_root=data_root, fine_grained_weight=float(weight), settings=dict(setting),
                             **{key: round(value, 2) for key, value in metrics.items()}))
            print_log(f'tune: {data_root} lambda {weight} {setting}: J&F {metrics["J&F-Mean"]:.2f}',
                      logger='current')
    finally:
        model.backbone = cached.backbone
        model.settings = base_settings
    return rows
