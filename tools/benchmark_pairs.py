"""PCK of pair configs x matchers on one pair dataset (default: the real-pair benchmark), as a table.

    python tools/benchmark_pairs.py configs/pair/r18-random_pairbench.py configs/pair/effl0_pairbench.py \
        --matchers nn soft_argmax ot_rhm [--data-root DIR] [--layers NAME ...] [--json OUT.json]

Per-pair PCK@0.05 / 0.1 / 0.15 (%), overall and separately for the warped photos and the real pairs of
tools/make_pair_benchmark.py; the same numbers as tools/test.py CONFIG --cfg-options
model.matcher.method=M, with each image's features computed once per config.
"""
import argparse
import json
import platform
import subprocess
import sys
import time

import torch

from sfc_plugin.correspondence.benchmark import ALPHAS, benchmark_pairs
from sfc_plugin.correspondence.matching import MATCHERS
from sfc_plugin.correspondence.pair_benchmark import PHOTOS, REAL_PAIRS
from sfc_plugin.utils import atomic_path


def cpu_model() -> str:
    try:
        output = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        return next(line.split(':', 1)[1].strip() for line in output.splitlines() if line.startswith('Model name'))
    except (OSError, StopIteration):
        return platform.processor() or 'unknown'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='pair configs (configs/pair/*.py)')
    parser.add_argument('--matchers', nargs='+', default=list(MATCHERS), choices=MATCHERS)
    parser.add_argument('--data-root', help="override the configs' dataset root")
    parser.add_argument('--layers', nargs='+', help='hyperpixel layers for every config')
    parser.add_argument('--json', help='also write the rows and the machine to this JSON file')
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = benchmark_pairs(args.configs, args.matchers, args.data_root, args.layers,
                           groups={'photo warps': PHOTOS, 'real pairs': REAL_PAIRS})
    header = ['config', 'matcher'] + [f'{group} PCK@{alpha:g}' for group in ('all', 'photo warps', 'real pairs')
                                      for alpha in ALPHAS]
    print('| ' + ' | '.join(header) + ' |\n|' + ' --- |' * len(header))
    for row in rows:
        cells = [row['config'], row['matcher'] + (' + hyperpixels' if row['layers'] else '')]
        for group in ('all', 'photo warps', 'real pairs'):
            cells += [f'{row[group][f"PCK@{alpha:g}"]:.1f}' if group in row else '-' for alpha in ALPHAS]
        print('| ' + ' | '.join(cells) + ' |')
    machine = dict(date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), cpu=cpu_model(),
                   cpu_capability=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, threads=1)
    print(f'\n{json.dumps(machine)}')
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, 'w') as file:
                json.dump(dict(machine=machine, rows=rows), file, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
