"""Nearest-neighbour matching PCK of each config's features on a real stereo pair with exact
correspondences (scikit-image's ``stereo_motorcycle``: ground-truth disparity), the report of
``tools/benchmark_pair_matching.py``; the metric itself is :func:`sfc_plugin.correspondence.stereo.stereo_pck`."""
from typing import Optional, Sequence

import torch

from sfc_plugin.correspondence.stereo import stereo_pck
from .common import cpu_info

PAIR = 'skimage.data.stereo_motorcycle (500x741, ground-truth disparity)'


def benchmark_stereo_pck(configs: Sequence[str], thresholds: Sequence[float] = (4, 8, 16),
                         cfg_options: Optional[dict] = None) -> dict:
    """The report: the pair, the CPU, and per config the PCK at each pixel threshold (the configs' models are
    initialised by their init_cfg, as ``tools/test.py`` does without a checkpoint; seed 0 for each)."""
    from skimage import data

    from sfc_plugin.apis.inference import build_model
    left, right, disparity = data.stereo_motorcycle()
    results = {}
    for config in configs:
        torch.manual_seed(0)  # the same random initialisation for configs without weights
        model, _ = build_model(config, cfg_options=cfg_options)
        pck = stereo_pck(model.backbone, left, right, disparity, thresholds)
        results[config] = {f'PCK@{t:g}px': round(value, 4) for t, value in pck.items()}
    return dict(pair=PAIR, cpu=cpu_info(), results=results)
