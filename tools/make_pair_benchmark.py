"""Write the real-pair correspondence benchmark (geometric, not semantic) in the SPair-71k layout.

    python tools/make_pair_benchmark.py --out data/pair_benchmark [--opencv-data DIR] [--seed 0]

See sfc_plugin/generators/pair_benchmark.py for what the pairs are; evaluate with
    python tools/test.py configs/pair/sfc_effl0-r18-fc_pairbench.py
"""
import argparse
import sys

from sfc_plugin.generators.pair_benchmark import PHOTOS, build_pairs, write_benchmark


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--out', default='data/pair_benchmark', help='output folder (SPair-71k layout)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-side', type=int, default=320, help='longer side of every image, pixels')
    parser.add_argument('--warps-per-photo', type=int, default=2, help='pairs per photo and warp kind')
    parser.add_argument('--keypoints', type=int, default=20, help='keypoints per pair (at most)')
    parser.add_argument('--photos', nargs='+', default=list(PHOTOS), help='skimage.data photo names')
    parser.add_argument('--opencv-data', metavar='DIR',
                        help="also use opencv-doc's graf1/graf3 + H1to3p.xml and aloe stereo pairs from this "
                             'unpacked data folder (DIR/usr/share/doc/opencv-doc/examples/data)')
    parser.add_argument('--no-photometric', action='store_true',
                        help='warp the photos without the photometric change (an ablation; other draws differ)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    args = parser.parse_args()
    try:
        pairs = build_pairs(args.seed, args.max_side, args.warps_per_photo, args.keypoints, args.photos,
                            args.opencv_data, not args.no_photometric)
        meta = dict(seed=args.seed, max_side=args.max_side, warps_per_photo=args.warps_per_photo,
                    keypoints=args.keypoints, photos=args.photos, opencv_data=args.opencv_data,
                    photometric=not args.no_photometric,
                    kind='geometric correspondence (same scene), not semantic')
        out = write_benchmark(args.out, pairs, meta, args.overwrite)
    except (OSError, ValueError, ImportError) as error:
        print(f'make_pair_benchmark: error: {error}', file=sys.stderr)
        return 1
    print(f'make_pair_benchmark: {len(pairs)} pairs, '
          f'{sum(len(pair["src_kps"]) for pair in pairs)} keypoints -> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
