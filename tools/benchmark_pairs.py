"""PCK of pair configs x layers x input sizes x matchers x flip modes on one pair dataset, as a table; or
(--stereo) nearest-neighbour PCK of any configs' features on a real stereo pair, as JSON.

    # the real-pair benchmark (geometric), every matcher
    python tools/benchmark_pairs.py configs/pair/effl0_pairbench.py --matchers nn soft_argmax ot_rhm
    # choose semantic settings on the tune split of the semantic pair set, best first
    python tools/benchmark_pairs.py configs/pair/effl0-semantic_semanticpairs.py --split val \
        --layer-sets semantic._blocks.6 semantic._blocks.10 semantic._blocks.6,semantic._blocks.10 \
        --max-sides 240 320 --matchers nn ot_rhm box_prior --flips off auto --sort --json tune.json
    # the feature networks of VOS evaluation configs on a real stereo pair, PCK at 4 / 8 / 16 pixels
    python tools/benchmark_pairs.py --stereo configs/vos_benchmark/r18-random_vosbench.py \
        configs/vos_benchmark/effl0_vosbench.py

Per-pair PCK (%) at 0.05 / 0.1 / 0.15: over all pairs, per category and the mean over categories (the
score ``--sort`` ranks by, at 0.1), and for the real-pair benchmark its photo warps and real pairs. The
numbers are those of ``tools/test.py CONFIG`` with the same settings (the same model code), each image's
features computed once per model. ``--json`` writes a result record that ``tools/write_results.py``
renders into the docs.

--stereo: scikit-image's ``stereo_motorcycle`` (rectified, ground-truth disparity) as a pair whose
keypoints are a grid of left pixels and their matches from the disparity; each left point goes to the
most similar cell of the whole right feature map, and PCK is the fraction within --thresholds pixels.
The configs are any with a backbone (their models initialised by their init_cfg, as tools/test.py does
without a checkpoint); the JSON object holds the pair, the CPU and PCK per config.
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from sfc_plugin.benchmarks.pairs import ALPHAS, STEREO_PAIR, benchmark_pairs, benchmark_stereo_pck
from sfc_plugin.benchmarks.results import make_record, render_markdown
from sfc_plugin.correspondence.model import FLIP_MODES, METHODS
from sfc_plugin.generators.pair_benchmark import PHOTOS, REAL_PAIRS
from sfc_plugin.utils import write_json


def _layer_set(text: str):
    """'a,b' -> ['a', 'b']; 'config' -> None (the config's layers); 'output' -> [] (the backbone's output)."""
    if text == 'config':
        return None
    return [] if text == 'output' else text.split(',')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='pair configs (configs/pair/*.py); with --stereo, any configs '
                                                   'with a backbone (e.g. configs/vos_benchmark/*.py)')
    parser.add_argument('--stereo', action='store_true',
                        help='measure the configs\' features on the stereo pair instead (nearest neighbour, PCK in pixels)')
    parser.add_argument('--thresholds', type=float, nargs='+', default=[4, 8, 16],
                        help='--stereo: PCK thresholds in pixels')
    parser.add_argument('--checkpoints', nargs='+', default=None,
                        help="one per config ('none': initialised by the config), e.g. a trained CATs-lite")
    parser.add_argument('--matchers', nargs='+', default=['nn'], choices=METHODS + ('cats',),
                        help="cats: the network of a trained matcher's config (CATsMatchingModel)")
    parser.add_argument('--flips', nargs='+', default=['off'], choices=FLIP_MODES)
    parser.add_argument('--flip-margins', nargs='+', type=float, default=[None],
                        help="margins of the 'auto' flip mode (default: the config's)")
    parser.add_argument('--layer-sets', nargs='+', type=_layer_set, default=[None],
                        help="hyperpixel layer lists, comma-separated names; 'config': the config's, 'output': "
                             "the backbone's output")
    parser.add_argument('--max-sides', nargs='+', type=int, default=[None], help='longer sides to resize images to')
    parser.add_argument('--data-root', help="override the configs' dataset root")
    parser.add_argument('--split', help="override the configs' dataset split (e.g. val: the tune split)")
    parser.add_argument('--sort', action='store_true', help='best mean over categories (PCK@0.1) first')
    parser.add_argument('--title', default='Pair matching PCK', help='heading of the result record')
    parser.add_argument('--description', default='', help='what the rows are, for the result record')
    parser.add_argument('--json', help='write the result record (--stereo: the report) to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides for every config')
    args = parser.parse_args()
    pair_only = ('checkpoints', 'matchers', 'flips', 'flip_margins', 'layer_sets', 'max_sides', 'data_root', 'split',
                 'sort')
    misplaced = [name for name in (pair_only if args.stereo else ('thresholds',))
                 if getattr(args, name) != parser.get_default(name)]
    if misplaced:
        parser.error(f'--{misplaced[0].replace("_", "-")} does not apply {"with" if args.stereo else "without"} --stereo')
    torch.set_num_threads(1)
    if args.stereo:
        rows = benchmark_stereo_pck(args.configs, args.thresholds, args.cfg_options)
        columns = [('config', 'config')] + [(f'PCK@{t:g}px', f'PCK@{t:g}px') for t in args.thresholds]
        record = make_record(args.title, args.description or f'{STEREO_PAIR}: nearest neighbour over the whole '
                             'right image; PCK (%): left grid points matched within each distance in pixels.', columns, rows,
                             threads=1)
        print(render_markdown(record))
        if args.json:
            write_json(args.json, record)
        return 0
    checkpoints = None if args.checkpoints is None else [None if path == 'none' else path for path in args.checkpoints]
    rows = benchmark_pairs(args.configs, args.matchers, checkpoints, args.data_root, args.split, args.layer_sets, args.max_sides,
                           args.flips, args.flip_margins, groups={'photo warps': PHOTOS, 'real pairs': REAL_PAIRS},
                           cfg_options=args.cfg_options)
    if args.sort:
        rows.sort(key=lambda row: -row['category_mean']['PCK@0.1'])
    columns = [('config', 'config'), ('checkpoint', 'checkpoint'), ('matcher', 'matcher'), ('flip', 'flip'), ('layers', 'layers'),
               ('max_side', 'max side')]
    categories = sorted({name for row in rows for name in row['categories']})
    groups = [group for group in ('photo warps', 'real pairs') if any(group in row for row in rows)]
    if len(categories) <= 8:
        columns += [(f'categories/{name}/PCK@0.1', f'{name} @0.1') for name in categories]
    columns += [(f'category_mean/PCK@{alpha:g}', f'category mean @{alpha:g}') for alpha in ALPHAS]
    columns += [(f'{group}/PCK@{alpha:g}', f'{group} @{alpha:g}') for group in ['all'] + groups for alpha in ALPHAS]
    record = make_record(args.title, args.description, columns, rows, threads=1)
    print(render_markdown(record))
    if args.json:
        write_json(args.json, record)
    return 0


if __name__ == '__main__':
    sys.exit(main())
