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
                        cfg_options: Optional[dict] = None, compare_layouts: bool = False,
                        compare_compiled: bool = False) -> dict:
    """The report: the CPU, torch's threads, the size, and per config the median and best ms per frame (after
    one warm-up run) and the feature shape, on scikit-image's ``astronaut`` resized to ``size`` (H, W).

    Variants of the same network are timed in alternation with the config's own run (so load changes hit all
    alike), each adding its median, a speed-up and its largest feature difference from the own run:

    - ``compare_layouts``: an ``SFCBackbone`` with ``channels_last`` off; ``speedup_over_contiguous`` is
      contiguous / own;
    - ``compare_compiled``: the network through ``torch.compile``; ``compiled_speedup`` is own / compiled, and
      ``compile_seconds`` the time its first call took.
    """
    from sfc_plugin.apis.inference import build_model
    from sfc_plugin.generators.offline_data import skimage_photo
    height, width = size
    photo = cv2.resize(skimage_photo('astronaut'), (width, height), interpolation=cv2.INTER_AREA)
    image = image_tensor(photo).contiguous()  # NCHW, as the runtime passes frames
    results = {}
    for config in configs:
        model, _ = build_model(config, cfg_options=cfg_options)
        backbone = model.backbone
        own_layout = getattr(backbone, 'channels_last', None)

        def layout_run(layout: Optional[bool], network: Callable = backbone) -> Callable[[], torch.Tensor]:
            def run() -> torch.Tensor:
                if layout is not None:
                    backbone.channels_last = layout
                return network(image)
            return run

        variants = {'own': layout_run(own_layout)}
        if compare_layouts and own_layout is not None:
            variants['contiguous'] = layout_run(False)
        row = {}
        with torch.no_grad():
            if compare_compiled:
                variants['compiled'] = layout_run(own_layout, torch.compile(backbone))
                row['compile_seconds'] = round(_time_ms(variants['compiled']) / 1000, 1)
            features = {name: run() for name, run in variants.items()}  # also the warm-up
            times = {name: [] for name in variants}
            for _ in range(repeats):
                for name, run in variants.items():
                    times[name].append(_time_ms(run))
        own_ms = statistics.median(times['own'])
        row.update(median_ms=round(own_ms, 1), best_ms=round(min(times['own']), 1),
                   features=list(features['own'].shape[1:]))
        if 'contiguous' in variants:
            contiguous_ms = statistics.median(times['contiguous'])
            row.update(channels_last=own_layout, contiguous_median_ms=round(contiguous_ms, 1),
                       speedup_over_contiguous=round(contiguous_ms / own_ms, 3),
                       max_abs_difference=float((features['own'] - features['contiguous']).abs().max()))
        if 'compiled' in variants:
            compiled_ms = statistics.median(times['compiled'])
            row.update(compiled_median_ms=round(compiled_ms, 1), compiled_speedup=round(own_ms / compiled_ms, 3),
                       compiled_max_abs_difference=float((features['own'] - features['compiled']).abs().max()))
        results[config] = row
    return dict(cpu=cpu_info(), threads=torch.get_num_threads(), size=[height, width], results=results)
