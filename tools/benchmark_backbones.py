"""Milliseconds per frame of each config's feature network (the fused SFCBackbone or one branch) on
one real 480p frame, every config measured in the same process so their ratios compare.

    python tools/benchmark_backbones.py configs/vos_benchmark/effl0_vosbench.py \
        configs/vos_benchmark/effl2-s8_vosbench.py --threads 1 --repeats 5

Prints one JSON object: the CPU (model, ISA level, AMX), the size, and per config the median and
best ms per frame and the feature shape.
"""
import argparse
import json
import statistics
import time

import cv2
import torch
from mmengine.config import DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='evaluation configs (PropagationModel)')
    parser.add_argument('--size', type=int, nargs=2, default=[480, 854], metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per config (after one warm-up)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides for every config')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sfc_plugin.datasets.offline_data import skimage_photo
    from sfc_plugin.deploy import build_model
    from sfc_plugin.propagation.benchmark import cpu_info
    height, width = args.size
    photo = cv2.resize(skimage_photo('astronaut'), (width, height), interpolation=cv2.INTER_AREA)
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    results = {}
    for config in args.configs:
        model, _ = build_model(config, cfg_options=args.cfg_options)
        times = []
        with torch.no_grad():
            features = model.backbone(image)
            for _ in range(args.repeats):
                start = time.perf_counter()
                model.backbone(image)
                times.append(1000 * (time.perf_counter() - start))
        results[config] = dict(median_ms=round(statistics.median(times), 1), best_ms=round(min(times), 1),
                               features=list(features.shape[1:]))
    print(json.dumps(dict(cpu=cpu_info(), threads=torch.get_num_threads(), size=[height, width],
                          results=results), indent=2))


if __name__ == '__main__':
    main()
