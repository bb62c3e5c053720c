"""J&F of label-propagation configs, one row each, as a result record.

    # the VOS benchmark's single-branch rows on its report set (one thread)
    OMP_NUM_THREADS=1 python tools/benchmark_vos.py configs/vos_benchmark/r18-random_vosbench.py \\
        configs/vos_benchmark/r18-fc-offline_vosbench.py configs/vos_benchmark/effl0_vosbench.py \\
        --json docs/results/vos_benchmark_shapes.json --title 'VOS benchmark: shapes report set'
    # named settings, one row each (here the fast mode's choice on the cut-out tune set)
    python tools/benchmark_vos.py configs/vos_benchmark/sfc_effl0-r18-fc_cutout.py \\
        --cfg-options test_dataloader.dataset.data_root=data/cutout_tune \\
        --variant default --variant bf16-window10 model.backbone.amp_dtype=bfloat16 model.propagation.context_len=10
    # a trained model of your own
    python tools/benchmark_vos.py configs/fc/fc_r18_davis2017.py --checkpoints work_dirs/fc/iter_60000.pth

Each config is evaluated as ``python tools/test.py CONFIG [CHECKPOINT]`` evaluates it (the same code:
mmengine's Runner, the config's dataset, model and DAVIS J&F), so every number is the one that command
prints. Rows: config, checkpoint, dataset (data root and split), J&F-Mean, J-Mean, F-Mean (%) and the
seconds taken; with ``--variant``, one row per config and variant. ``--json`` writes a result record
(rewritten after each row, so a stopped run keeps its finished rows) that ``tools/write_results.py`` renders
into the docs.
"""
import argparse
import sys

import torch

from sfc_plugin.benchmarks.results import make_record, render_markdown
from sfc_plugin.benchmarks.vos import COLUMNS, VARIANT_COLUMNS, benchmark_vos
from sfc_plugin.utils import write_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='label-propagation configs on DAVIS-layout data '
                                                   '(configs/vos_benchmark/*.py, configs/sfc/*davis2017.py, ...)')
    parser.add_argument('--checkpoints', nargs='+', default=None,
                        help="one per config ('none': the config initialises every weight itself)")
    parser.add_argument('--work-dir', help='keep each evaluation\'s logs under this folder (default: a temporary one)')
    parser.add_argument('--cfg-options', nargs='+', help='overrides for every config, as tools/test.py takes them')
    parser.add_argument('--variant', nargs='+', action='append', metavar=('NAME', 'KEY=VALUE'),
                        help='a named set of --cfg-options on top of the common ones (repeatable): one row per '
                             'config and variant, e.g. --variant default --variant bf16 model.backbone.amp_dtype=bfloat16')
    parser.add_argument('--title', default='Label propagation J&F', help='heading of the result record')
    parser.add_argument('--description', default='', help='what the rows are, for the result record')
    parser.add_argument('--json', help='write the result record to this file')
    args = parser.parse_args(argv)
    checkpoints = None if args.checkpoints is None else [None if path == 'none' else path for path in args.checkpoints]
    # the commit, machine and date of the launch: what is measured, even if the tree changes during a long run
    variants = [(variant[0], variant[1:]) for variant in args.variant] if args.variant else None
    launch = make_record(args.title, args.description, VARIANT_COLUMNS if variants else COLUMNS, [],
                         threads=torch.get_num_threads())

    def record_of(rows):
        return dict(launch, rows=rows)

    def save(rows):
        if args.json:
            write_json(args.json, record_of(rows))

    try:
        rows = benchmark_vos(args.configs, checkpoints, args.work_dir, args.cfg_options, on_row=save, variants=variants)
    except (ValueError, FileNotFoundError) as error:
        print(f'benchmark_vos: {error}', file=sys.stderr)
        return 1
    print(render_markdown(record_of(rows)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
