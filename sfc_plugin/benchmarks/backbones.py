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

    With ``compare_layouts`` an ``SFCBackbone`` is timed with ``channels_last`` on (the row's figures) and off,
    the two layouts in alternation (so load changes hit both alike): the contiguous layout's median, the
    speed-up and the largest feature difference are added."""
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
        layouts = (True, False) if compare else (None,)  # None: the config's own

        def run(layout: Optional[bool]) -> torch.Tensor:
            if layout is not None:
                backbone.channels_last = layout
            return backbone(image)

        with torch.no_grad():
            features = {layout: run(layout) for layout in layouts}  # also the warm-up
            times = {layout: [] for layout in layouts}
            for _ in range(repeats):
                for layout in layouts:
                    times[layout].append(_time_ms(lambda: run(layout)))
        first = layouts[0]
        row = dict(median_ms=round(statistics.median(times[first]), 1), best_ms=round(min(times[first]), 1),
                   features=list(features[first].shape[1:]))
        if compare:
            contiguous_ms = statistics.median(times[False])
            row.update(channels_last=True, contiguous_median_ms=round(contiguous_ms, 1),
                       speedup_over_contiguous=round(contiguous_ms / statistics.median(times[True]), 3),
                       max_abs_difference=float((features[True] - features[False]).abs().max()))
        results[config] = row
    return dict(cpu=cpu_info(), threads=torch.get_num_threads(), size=[height, width], results=results)
