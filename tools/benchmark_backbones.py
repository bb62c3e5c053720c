"""Milliseconds per frame of each config's feature network (the fused SFCBackbone or one branch) on
one real 480p frame, every config measured in the same process so their ratios compare.

    python tools/benchmark_backbones.py configs/vos_benchmark/effl0_vosbench.py \
        configs/vos_benchmark/effl2-s8_vosbench.py --threads 1 --repeats 5
    # the default model's channels-last layout against the contiguous one
    python tools/benchmark_backbones.py configs/vos_benchmark/sfc_effl0-r18-fc_vosbench.py --compare-layouts
    # eager against torch.compile (sfc-propagate --compile)
    python tools/benchmark_backbones.py configs/vos_benchmark/sfc_effl0-r18-fc_vosbench.py --compare-compiled

Prints one JSON object: the CPU (model, ISA level, AMX), the size, and per config the median and
best ms per frame and the feature shape.
"""
import argparse
import json

import torch
from mmengine.config import DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='evaluation configs (PropagationModel)')
    parser.add_argument('--size', type=int, nargs=2, default=[480, 854], metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per config (after one warm-up)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides for every config')
    parser.add_argument('--compare-layouts', action='store_true',
                        help='also time each SFCBackbone with channels_last off, in alternation, and print the '
                             'speed-up and the largest feature difference')
    parser.add_argument('--compare-compiled', action='store_true',
                        help='also time each network through torch.compile, in alternation, and print the compile '
                             'time, the speed-up and the largest feature difference')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sfc_plugin.benchmarks.backbones import benchmark_backbones
    report = benchmark_backbones(args.configs, tuple(args.size), args.repeats, args.cfg_options, args.compare_layouts,
                                 args.compare_compiled)
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
