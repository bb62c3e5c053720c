"""Choose the pair matcher's hyperpixel layers without labels: beam search on the cycle loss.

Each candidate set of backbone layers is scored by the cross-instance cycle loss of its hyperpixel
features on unlabelled same-category pairs (an SPair-71k root's split, or a folder of category
folders), with the same attention-centred crops for every set and no training. Example:

  python tools/search_layers.py configs/moco/mococycle_r50_8xb32-step-20e_in1k-spair71k.py \\
      work_dirs/mococycle/iter_100000.pth --images data/SPair-71k --split val \\
      --candidates layer1.2 layer2.1 layer2.3 layer3.0 layer3.3 layer3.5 layer4.0 layer4.2 \\
      --beam 3 --max-layers 4 --prefix semantic. --out work_dirs/layers.json

Give the candidates in network order: the first layer of a set sets the hyperpixels' resolution.
Prints every scored set (step, loss in pixels^2, layers) and writes them with the chosen layers to
--out; the pair configs take the choice as --cfg-options model.layers="[...]" (with --prefix, the
names as the pair model's backbone spells them).
"""
import argparse

from mmengine.config import DictAction

from sfc_plugin.apis.layer_search import run_layer_search
from sfc_plugin.benchmarks.common import cpu_info
from sfc_plugin.utils import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='a model config with a backbone (MoCo + cycle, or a pair config)')
    parser.add_argument('checkpoint', nargs='?', default=None, help='weights (default: the config\'s init_cfg)')
    parser.add_argument('--images', required=True, help='SPair-71k root or a folder of category folders')
    parser.add_argument('--split', default='val', help='SPair-71k split (default: val)')
    parser.add_argument('--candidates', nargs='+', required=True, help='backbone layer names, in network order')
    parser.add_argument('--beam', type=int, default=3, help='sets kept per step (default: 3)')
    parser.add_argument('--max-layers', type=int, default=4, help='largest set (default: 4)')
    parser.add_argument('--max-pairs', type=int, default=32, help='evenly spaced pairs used (default: 32)')
    parser.add_argument('--pair-size', type=int, default=None, help='pair image side (default: the config\'s, or 224)')
    parser.add_argument('--crop-size', type=int, default=None, help='crop side (default: the config\'s cycle)')
    parser.add_argument('--attention-layer', default=None, help='layer of the attention (default: the config\'s cycle)')
    parser.add_argument('--temperature', type=float, default=None, help='cycle temperature (default: the config\'s)')
    parser.add_argument('--batch-size', type=int, default=4, help='pairs per forward (default: 4)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the crops (default: 0)')
    parser.add_argument('--prefix', default='', help='prepended to the chosen names in --out (e.g. "semantic.")')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    parser.add_argument('--out', default=None, help='write the rows and the chosen layers as JSON here')
    args = parser.parse_args()

    cycle_options = {key: value for key, value in dict(crop_size=args.crop_size, attention_layer=args.attention_layer,
                                                        temperature=args.temperature).items() if value is not None}
    result = run_layer_search(args.config, args.checkpoint, args.images, args.candidates, args.split, args.beam,
                              args.max_layers, args.pair_size, args.max_pairs, args.batch_size, args.seed,
                              cycle_options, args.cfg_options)
    print(f'{result["num_pairs"]} pairs of {args.images} ({args.split}), {result["pair_size"]} px, '
          f'crops {result["cycle"]["crop_size"]} px, attention {result["cycle"]["attention_layer"]}')
    print('step\tcycle MSE (px^2)\tlayers')
    for row in result['rows']:
        print(f'{row["step"]}\t{row["loss"]:.2f}\t{" ".join(row["layers"])}')
    result['layers'] = [args.prefix + name for name in result['layers']]
    print(f'chosen: {result["layers"]} (cycle MSE {result["loss"]:.2f})')
    if args.out:
        write_json(args.out, dict(result, prefix=args.prefix, cpu=cpu_info()))


if __name__ == '__main__':
    main()
