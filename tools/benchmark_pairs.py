"""PCK of pair configs x matchers on one pair dataset (default: the real-pair benchmark), as a table.

    python tools/benchmark_pairs.py configs/pair/r18-random_pairbench.py configs/pair/effl0_pairbench.py \
        --matchers nn soft_argmax ot_rhm [--data-root DIR] [--layers NAME ...] [--json OUT.json]

Per-pair PCK@0.05 / 0.1 / 0.15 (%), overall and separately for the warped photos and the real pairs of
tools/make_pair_benchmark.py; the same numbers as tools/test.py CONFIG --cfg-options
model.matcher.method=M, with each image's features computed once per config.
"""
import argparse
import json
import sys

import torch

from sfc_plugin.benchmarks.pairs import benchmark_pairs, machine, markdown_table
from sfc_plugin.correspondence.matching import MATCHERS
from sfc_plugin.generators.pair_benchmark import PHOTOS, REAL_PAIRS
from sfc_plugin.utils import atomic_path


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
    print(markdown_table(rows, ('all', 'photo warps', 'real pairs')))
    measured_on = machine(threads=1)
    print(f'\n{json.dumps(measured_on)}')
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, 'w') as file:
                json.dump(dict(machine=measured_on, rows=rows), file, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
