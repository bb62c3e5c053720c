"""Milliseconds per frame of each config's feature network (the fused SFCBackbone or one branch) on one real
photo, every config measured in the same process so their ratios compare (``tools/benchmark_backbones.py``)."""
import statistics
import time
from typing import Optional, Sequence, Tuple

import cv2
import torch

from sfc_plugin.utils import image_tensor
from .common import cpu_info


def benchmark_backbones(configs: Sequence[str], size: Tuple[int, int] = (480, 854), repeats: int = 5,
                        cfg_options: Optional[dict] = None) -> dict:
    """The report: the CPU, torch's threads, the size, and per config the median and best ms per frame (after
    one warm-up run) and the feature shape, on scikit-image's ``astronaut`` resized to ``size`` (H, W)."""
    from sfc_plugin.apis.inference import build_model
    from sfc_plugin.generators.offline_data import skimage_photo
    height, width = size
    photo = cv2.resize(skimage_photo('astronaut'), (width, height), interpolation=cv2.INTER_AREA)
    image = image_tensor(photo)
    results = {}
    for config in configs:
        model, _ = build_model(config, cfg_options=cfg_options)
        times = []
        with torch.no_grad():
            features = model.backbone(image)
            for _ in range(repeats):
                start = time.perf_counter()
                model.backbone(image)
                times.append(1000 * (time.perf_counter() - start))
        results[config] = dict(median_ms=round(statistics.median(times), 1), best_ms=round(min(times), 1),
                               features=list(features.shape[1:]))
    return dict(cpu=cpu_info(), threads=torch.get_num_threads(), size=[height, width], results=results)
