"""Convert a published ResNet checkpoint (MoCo, SimSiam, PixPro, SFC FC, CRW, torchvision) into a
plain torchvision-style backbone checkpoint that loads strictly into sfc_plugin's ResNet.

Examples:
  # semantic and fine-grained networks -> one fused SFCBackbone checkpoint for tools/test.py
  python tools/convert_checkpoint.py moco_v1_200ep_pretrain.pth.tar moco_r50.pth \\
      --num-stages 3 --prefix backbone.semantic.
  python tools/convert_checkpoint.py pretrained_fc.pth sfc.pth \\
      --num-stages 3 --prefix backbone.fine_grained. --merge moco_r50.pth
"""
import argparse
import sys

from sfc_plugin.models.converters import CONVERTERS, convert_checkpoint_file
from sfc_plugin.utils.checkpoint import CheckpointMismatchError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('out', help='converted checkpoint to write')
    parser.add_argument('--layout', default='auto', choices=['auto', *sorted(CONVERTERS)],
                        help='key layout of SRC (default: detected)')
    parser.add_argument('--depth', type=int, choices=[18, 50], default=None,
                        help='ResNet depth to check against (default: inferred from the keys)')
    parser.add_argument('--num-stages', type=int, choices=[3, 4], default=4,
                        help='3 drops layer4 (the evaluation backbone); default 4')
    parser.add_argument('--prefix', default='',
                        help='prefix for every key, e.g. backbone.fine_grained.')
    parser.add_argument('--merge', nargs='+', default=[], metavar='CONVERTED',
                        help='checkpoints written by this tool to add to OUT')
    parser.add_argument('--unsafe-pickle', action='store_true',
                        help='load SRC as a full pickle (runs code in the file: trusted files only)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        convert_checkpoint_file(args.src, args.out, layout=args.layout, depth=args.depth,
                                num_stages=args.num_stages, prefix=args.prefix, merge=args.merge,
                                allow_pickle=args.unsafe_pickle)
    except (CheckpointMismatchError, ValueError, RuntimeError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
