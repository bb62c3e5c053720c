"""Nearest-neighbour matching PCK of each config's features on a real stereo pair with exact
correspondences (scikit-image's ``stereo_motorcycle``: ground-truth disparity).

    python tools/benchmark_pair_matching.py configs/vos_benchmark/r18-random_vosbench.py \
        configs/vos_benchmark/r18-fc-offline_vosbench.py ...

Prints one JSON object: PCK at 4, 8 and 16 pixels per config (the configs' models are initialised by
their init_cfg, as tools/test.py does without a checkpoint).
"""
import argparse
import json

from mmengine.config import DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='evaluation configs (PropagationModel)')
    parser.add_argument('--thresholds', type=float, nargs='+', default=[4, 8, 16])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, e.g. model.backbone.semantic.out_block=4')
    args = parser.parse_args()

    from sfc_plugin.benchmarks.pair_matching import benchmark_stereo_pck
    print(json.dumps(benchmark_stereo_pck(args.configs, args.thresholds, args.cfg_options), indent=2))


if __name__ == '__main__':
    main()
