"""Write the cross-instance semantic pair set (hand-placed keypoints on photographed stamps) in the SPair-71k layout.

    python tools/make_semantic_pairs.py --stamps DIR --out data/semantic_pairs [--seed 0] [--opencv-data DIR]
        [--class-folders data/semantic_classes]

DIR is Tux Paint's stamps folder (/usr/share/tuxpaint/stamps, or that path inside an unpacked
tuxpaint-stamps-default .deb). Splits: test (report categories), val (tuning categories), trn (other
categories: exact same-stamp pairs with keypoints, cross-stamp pairs without, and cross-stamp pairs with
hand-placed keypoints of the annotated trn categories). --class-folders also writes
single composites of the trn stamps as <category>/<image>.jpg. See sfc_plugin/generators/semantic_pairs.py
and docs/semantic_pairs.md; read a split with
    SPair71kDataset(data_root=OUT, split='test')
    SPair71kDataset(data_root=OUT, split='trn', allow_unlabelled=True)
"""
import argparse
import sys

from sfc_plugin.generators.semantic_pairs import (ANNOTATION_FILE, AnnotationError, draw_examples,
                                                  draw_keypoint_sheet, load_annotations, write_class_folders,
                                                  write_jpeg_atomic, write_semantic_pairs)

TRN_EXAMPLE_CATEGORIES = ('fruit', 'ball', 'hammer')  # --trn-examples draws these (none there: the first three)


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
                        help='trn: at most this many cross pairs (two stamps, no keypoints) a category')
    parser.add_argument('--trn-exact-per-stamp', type=int, default=3,
                        help='trn: exact pairs (the stamp drawn twice, exact keypoints) of every stamp')
    parser.add_argument('--trn-points', type=int, default=24, help='trn: points sampled on the stamp of an exact pair')
    parser.add_argument('--trn-labelled-draws', type=int, default=4,
                        help='trn: draws of every ordered instance pair of a hand-annotated trn category')
    parser.add_argument('--class-folders', metavar='OUT',
                        help='also write single composites of the trn stamps as OUT/<category>/<stamp>_<k>.jpg')
    parser.add_argument('--images-per-stamp', type=int, default=4, help='class folders: images of every stamp')
    parser.add_argument('--class-backgrounds', choices=('photos', 'noise'), default='photos',
                        help="class folders: the trn photos (shared within a class) or a random colour field per "
                             "image (a class then shares only its objects)")
    parser.add_argument('--max-side', type=int, default=320, help='longer side of every image, pixels')
    parser.add_argument('--max-angle', type=float, default=10.0, help='largest in-plane rotation, degrees')
    parser.add_argument('--keypoint-sheet', metavar='JPG',
                        help='also draw every annotated test and val stamp with its keypoints')
    parser.add_argument('--trn-keypoint-sheet', metavar='JPG',
                        help='also draw every annotated trn stamp with its keypoints')
    parser.add_argument('--examples', metavar='JPG', help='also draw a few written test pairs')
    parser.add_argument('--val-examples', metavar='JPG', help='also draw a few written val pairs')
    parser.add_argument('--trn-examples', metavar='JPG', help='also draw an exact and a cross trn pair of a few '
                        'categories')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    args = parser.parse_args()
    try:
        annotations = load_annotations(args.annotations)
        meta = write_semantic_pairs(args.out, args.stamps, args.seed, args.opencv_data, annotations, args.draws,
                                    args.trn_pairs_per_category, args.max_side, args.max_angle,
                                    overwrite=args.overwrite, val_draws=args.val_draws,
                                    val_pairs_per_category=args.val_pairs_per_category or None,
                                    trn_exact_per_stamp=args.trn_exact_per_stamp, trn_points=args.trn_points,
                                    trn_labelled_draws=args.trn_labelled_draws)
        if args.class_folders:
            classes = write_class_folders(args.class_folders, args.stamps, args.opencv_data, args.images_per_stamp,
                                          args.seed, annotations, args.max_side, args.max_angle, args.overwrite,
                                          backgrounds=args.class_backgrounds)
        for sheet, splits in ((args.keypoint_sheet, ('test', 'val')), (args.trn_keypoint_sheet, ('trn',))):
            if sheet:
                chosen = {name: entry for name, entry in annotations['categories'].items() if entry['split'] in splits}
                if not chosen:
                    raise ValueError(f'{sheet}: the annotations have no {" or ".join(splits)} category to draw')
                write_jpeg_atomic(sheet, draw_keypoint_sheet(dict(annotations, categories=chosen), args.stamps))
        if args.examples:
            write_jpeg_atomic(args.examples, draw_examples(args.out))
        if args.val_examples:
            write_jpeg_atomic(args.val_examples, draw_examples(args.out, 'val'))
        if args.trn_examples:
            written = meta['splits']['trn']['categories']
            shown = [name for name in TRN_EXAMPLE_CATEGORIES if name in written] or written[:3]
            write_jpeg_atomic(args.trn_examples, draw_examples(args.out, 'trn', categories=shown))
    except (OSError, ValueError, ImportError, AnnotationError) as error:
        print(f'make_semantic_pairs: error: {error}', file=sys.stderr)
        return 1
    for split, count in meta['splits'].items():
        print(f'make_semantic_pairs: {split}: {count["pairs"]} pairs, {count["keypoints"]} keypoint matches, '
              f'{count["mirrored_pairs"]} mirrored, {len(count["categories"])} categories')
    print(f'make_semantic_pairs: -> {args.out}')
    if args.class_folders:
        print(f'make_semantic_pairs: {len(classes["images"])} images in {len(classes["categories"])} class folders '
              f'-> {args.class_folders}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
