"""Whether objects that were hidden can be found again by their appearance, on a turning benchmark.

    # the default model on the turning tune and report sets (one row per returning object)
    OMP_NUM_THREADS=2 python tools/benchmark_returning.py data/turning_tune data/turning_report \\
        --json docs/results/returning_objects.json

For each object that is hidden and comes back: the propagation's IoU after its return, and an appearance
oracle (its true mask at frame 0, or at its largest view before it was hidden, as the only memory, read
without the radius): the share of its cells read as the object and the cells elsewhere read as it, per frame
(``sfc_plugin/benchmarks/returning.py``). ``--json`` writes a result record for ``tools/write_results.py``.
"""
import argparse
import sys

import torch

from sfc_plugin.apis.inference import build_model
from sfc_plugin.benchmarks.results import make_record, render_markdown
from sfc_plugin.benchmarks.returning import COLUMNS, benchmark_returning
from sfc_plugin.benchmarks.vos import parse_cfg_options
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CONFIG
from sfc_plugin.utils import write_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('data_roots', nargs='+', help='turning benchmarks (tools/make_vos_benchmark.py --kind turning)')
    parser.add_argument('--config', default=DEFAULT_MODEL_CONFIG, help='evaluation config (default: the built-in model)')
    parser.add_argument('--checkpoint', help='weights for --config (default: its init_cfg)')
    parser.add_argument('--cfg-options', nargs='+', help='overrides of the config, as tools/test.py takes them')
    parser.add_argument('--json', help='write the result record to this file')
    args = parser.parse_args(argv)
    model, _ = build_model(args.config, args.checkpoint, parse_cfg_options(args.cfg_options))
    rows = []
    try:
        for data_root in args.data_roots:
            rows += [dict(row, benchmark=data_root) for row in benchmark_returning(model, data_root)]
    except (ValueError, FileNotFoundError) as error:
        print(f'benchmark_returning: {error}', file=sys.stderr)
        return 1
    record = make_record('Returning objects: propagation and an appearance oracle',
                         'Per object hidden and back: IoU after its return, and the share of its cells (recall) '
                         'and the cells elsewhere (false cells, per frame) that its true mask at one frame, read '
                         'alone without the radius, gives it.',
                         (('benchmark', 'benchmark'),) + COLUMNS, rows, threads=torch.get_num_threads())
    if args.json:
        write_json(args.json, record)
    print(render_markdown(record))
    return 0


if __name__ == '__main__':
    sys.exit(main())
