"""Write the cross-instance semantic pair set (hand-placed keypoints on photographed stamps) in the SPair-71k layout.

    python tools/make_semantic_pairs.py --stamps DIR --out data/semantic_pairs [--seed 0] [--opencv-data DIR]

DIR is Tux Paint's stamps folder (/usr/share/tuxpaint/stamps, or that path inside an unpacked
tuxpaint-stamps-default .deb). Splits: test (report categories), val (tuning categories), trn (unlabelled).
See sfc_plugin/generators/semantic_pairs.py and docs/semantic_pairs.md; read a split with
    SPair71kDataset(data_root=OUT, split='test')
"""
import argparse
import sys

from sfc_plugin.generators.semantic_pairs import (ANNOTATION_FILE, AnnotationError, draw_examples,
                                                  draw_keypoint_sheet, load_annotations, write_jpeg_atomic,
                                                  write_semantic_pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--stamps', default='/usr/share/tuxpaint/stamps', help="Tux Paint's stamps folder")
    parser.add_argument('--out', default='data/semantic_pairs', help='output folder (SPair-71k layout)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--opencv-data', metavar='DIR',
                        help="also use opencv-doc's photos as backgrounds, from this unpacked data folder "
                             '(DIR/usr/share/doc/opencv-doc/examples/data)')
    parser.add_argument('--annotations', default=ANNOTATION_FILE, help='keypoint annotation file (JSON)')
    parser.add_argument('--draws', type=int, default=2, help='test: draws of every ordered instance pair')
    parser.add_argument('--val-draws', type=int, default=4, help='val: draws of every ordered instance pair')
    parser.add_argument('--val-pairs-per-category', type=int, default=32,
                        help='val: at most this many pairs a category (0: no cap); a capped category keeps '
                             'as many different instance pairs as it can (seeded)')
    parser.add_argument('--trn-pairs-per-category', type=int, default=40,
                        help='trn: at most this many pairs a category')
    parser.add_argument('--max-side', type=int, default=320, help='longer side of every image, pixels')
    parser.add_argument('--max-angle', type=float, default=10.0, help='largest in-plane rotation, degrees')
    parser.add_argument('--keypoint-sheet', metavar='JPG', help='also draw every annotated stamp with its keypoints')
    parser.add_argument('--examples', metavar='JPG', help='also draw a few written test pairs')
    parser.add_argument('--val-examples', metavar='JPG', help='also draw a few written val pairs')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    args = parser.parse_args()
    try:
        annotations = load_annotations(args.annotations)
        meta = write_semantic_pairs(args.out, args.stamps, args.seed, args.opencv_data, annotations, args.draws,
                                    args.trn_pairs_per_category, args.max_side, args.max_angle,
                                    overwrite=args.overwrite, val_draws=args.val_draws,
                                    val_pairs_per_category=args.val_pairs_per_category or None)
        if args.keypoint_sheet:
            write_jpeg_atomic(args.keypoint_sheet, draw_keypoint_sheet(annotations, args.stamps))
        if args.examples:
            write_jpeg_atomic(args.examples, draw_examples(args.out))
        if args.val_examples:
            write_jpeg_atomic(args.val_examples, draw_examples(args.out, 'val'))
    except (OSError, ValueError, ImportError, AnnotationError) as error:
        print(f'make_semantic_pairs: error: {error}', file=sys.stderr)
        return 1
    for split, count in meta['splits'].items():
        print(f'make_semantic_pairs: {split}: {count["pairs"]} pairs, {count["keypoints"]} keypoint matches, '
              f'{count["mirrored_pairs"]} mirrored, {len(count["categories"])} categories')
    print(f'make_semantic_pairs: -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
