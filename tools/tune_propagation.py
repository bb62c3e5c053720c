"""Choose the fusion weight (lambda) and the propagation settings on DAVIS-layout tune sets.

Branch features are computed once per frame; every grid point is scored with the evaluation
model's own propagation and DAVISMetric (the numbers tools/test.py prints). Example:

  python tools/tune_propagation.py sfc_plugin/assets/default_model.py \
      --data-roots data/vos_benchmark_tune data/cutout_tune --lambdas 0.5 1 1.75 \
      --settings '{"topk": 15, "radius": 15, "temperature": 0.1}' '{"topk": 10, "radius": 12, "temperature": 0.05}' \
      --out work_dirs/tune.json

Prints one line per grid point and writes every row (J&F, J, F per tune set) as JSON with --out.
"""
import argparse
import json

from mmengine.config import DictAction

from sfc_plugin.apis.inference import build_model
from sfc_plugin.apis.tune_propagation import tune_grid
from sfc_plugin.benchmarks.common import cpu_info
from sfc_plugin.utils import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='evaluation config (PropagationModel with an SFCBackbone)')
    parser.add_argument('--checkpoint', default=None, help='weights (default: the config\'s init_cfg)')
    parser.add_argument('--data-roots', nargs='+', required=True, help='DAVIS-layout tune sets')
    parser.add_argument('--lambdas', type=float, nargs='+', default=None,
                        help='fusion weights to try (default: the config\'s)')
    parser.add_argument('--settings', nargs='+', default=['{}'],
                        help='JSON dicts of propagator settings merged into the config\'s')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    parser.add_argument('--out', default=None, help='write the rows as JSON here')
    args = parser.parse_args()

    model, cfg = build_model(args.config, args.checkpoint, cfg_options=args.cfg_options)
    lambdas = args.lambdas or [model.backbone.fine_grained_weight]
    rows = tune_grid(model, cfg, args.data_roots, lambdas, [json.loads(text) for text in args.settings])
    for row in rows:
        print(f'{row["data_root"]}\tlambda={row["fine_grained_weight"]:g}\t{json.dumps(row["settings"])}\t'
              f'J&F {row["J&F-Mean"]:.2f}\tJ {row["J-Mean"]:.2f}\tF {row["F-Mean"]:.2f}')
    if args.out:
        write_json(args.out, dict(config=args.config, cfg_options=args.cfg_options, cpu=cpu_info(), rows=rows))


if __name__ == '__main__':
    main()
