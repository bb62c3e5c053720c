"""Nearest-neighbour matching PCK of each config's features on a real stereo pair with exact
correspondences (scikit-image's ``stereo_motorcycle``: ground-truth disparity).

    python tools/benchmark_pair_matching.py configs/vos_benchmark/r18-random_vosbench.py \
        configs/vos_benchmark/r18-fc-offline_vosbench.py ...

Prints one JSON object: PCK at 4, 8 and 16 pixels per config (the configs' models are initialised by
their init_cfg, as tools/test.py does without a checkpoint).
"""
import argparse
import json

import torch
from mmengine.config import DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+', help='evaluation configs (PropagationModel)')
    parser.add_argument('--thresholds', type=float, nargs='+', default=[4, 8, 16])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, e.g. model.backbone.semantic.out_block=4')
    args = parser.parse_args()

    from skimage import data

    from sfc_plugin.deploy import build_model
    from sfc_plugin.evaluation.pair_matching import stereo_pck
    from sfc_plugin.propagation.benchmark import cpu_info
    left, right, disparity = data.stereo_motorcycle()
    results = {}
    for config in args.configs:
        torch.manual_seed(0)  # the same random initialisation for configs without weights
        model, _ = build_model(config, cfg_options=args.cfg_options)
        pck = stereo_pck(model.backbone, left, right, disparity, args.thresholds)
        results[config] = {f'PCK@{t:g}px': round(value, 4) for t, value in pck.items()}
    print(json.dumps(dict(pair='skimage.data.stereo_motorcycle (500x741, ground-truth disparity)',
                          cpu=cpu_info(), results=results), indent=2))


if __name__ == '__main__':
    main()
