"""Milliseconds per frame of each config's feature network (the fused SFCBackbone or one branch) on one real
photo, every config measured in the same process so their ratios compare (``tools/benchmark_backbones.py``)."""
import statistics
import time
from typing import Callable, Optional, Sequence, Tuple

import cv2
import torch

from sfc_plugin.utils import image_tensor
from .common import cpu_info


def _time_ms(run: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - start)


def benchmark_backbones(configs: Sequence[str], size: Tuple[int, int] = (480, 854), repeats: int = 5,
                        cfg_options: Optional[dict] = None, compare_layouts: bool = False) -> dict:
    """The report: the CPU, torch's threads, the size, and per config the median and best ms per frame (after
    one warm-up run) and the feature shape, on scikit-image's ``astronaut`` resized to ``size`` (H, W).

    With ``compare_layouts`` an ``SFCBackbone`` is also timed with ``channels_last`` off, the two layouts in
    alternation (so load changes hit both alike): the contiguous layout's median, the speed-up and the largest
    feature difference are added."""
    from sfc_plugin.apis.inference import build_model
    from sfc_plugin.generators.offline_data import skimage_photo
    height, width = size
    photo = cv2.resize(skimage_photo('astronaut'), (width, height), interpolation=cv2.INTER_AREA)
    image = image_tensor(photo).contiguous()  # NCHW, as the runtime passes frames
    results = {}
    for config in configs:
        model, _ = build_model(config, cfg_options=cfg_options)
        backbone = model.backbone
        compare = compare_layouts and hasattr(backbone, 'channels_last')
        layout = backbone.channels_last if compare else None
        times, contiguous_times = [], []
        with torch.no_grad():
            features = backbone(image)
            if compare:
                backbone.channels_last = not layout
                other = backbone(image)
            for _ in range(repeats):
                if compare:
                    backbone.channels_last = layout
                times.append(_time_ms(lambda: backbone(image)))
                if compare:
                    backbone.channels_last = False
                    contiguous_times.append(_time_ms(lambda: backbone(image)))
                    backbone.channels_last = layout
        row = dict(median_ms=round(statistics.median(times), 1), best_ms=round(min(times), 1),
                   features=list(features.shape[1:]))
        if compare:
            contiguous_ms = statistics.median(contiguous_times)
            row.update(channels_last=layout, contiguous_median_ms=round(contiguous_ms, 1),
                       speedup_over_contiguous=round(contiguous_ms / statistics.median(times), 3),
                       max_abs_difference=float((features - other).abs().max()))
        results[config] = row
    return dict(cpu=cpu_info(), threads=torch.get_num_threads(), size=[height, width], results=results)
