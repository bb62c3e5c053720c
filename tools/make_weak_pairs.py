"""Pseudo-labelled semantic pairs from image-level labels (class folders), in the SPair-71k layout.

    python tools/make_weak_pairs.py ROOT --out OUT [--config CFG [--checkpoint CKPT]] [--pairs-per-image 3]
                                    [--min-keypoints 5] [--device cpu] ...

ROOT holds one folder of images per class (ImageNet's layout, ROOT/<class>/<image>.JPEG). A pipeline
built after the abstract of Huang et al. (ICCV 2023): image-, region- and pixel-level matching,
calibration and masked voting, a consistency check through a third image; every rule is this
project's design (sfc_plugin/correspondence/weak_supervision.py, docs/weak_supervision.md). Rerun the
same command to resume an interrupted run. Read the result with
    SPair71kDataset(data_root=OUT, split='trn')
"""
import argparse
import os
import sys
import time

import torch

from sfc_plugin.correspondence.weak_supervision import (WeakPairSettings, WeakSupervisionError, list_class_images,
                                                        make_weak_pairs, model_from_config)
from sfc_plugin.utils import CheckpointMismatchError, file_sha256

DEFAULTS = WeakPairSettings()


def arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('root', metavar='ROOT', help='folder of class folders of images')
    parser.add_argument('--out', required=True, help='output folder (SPair-71k layout); an earlier run there resumes')
    parser.add_argument('--config', help='pair model config with a backbone (default: the built-in semantic pair '
                                         'model, EfficientNet-Lite0 hyperpixels)')
    parser.add_argument('--checkpoint', help='weights of --config (keys backbone.*)')
    parser.add_argument('--max-side', type=int, help="longer side of the network input (default: the config's)")
    parser.add_argument('--device', help='torch device (default: CUDA if available, else cpu)')
    parser.add_argument('--pairs-per-image', type=int, default=DEFAULTS.pairs_per_image,
                        help='candidate partners of each image: its most similar images of the class')
    parser.add_argument('--min-keypoints', type=int, default=DEFAULTS.min_keypoints,
                        help='a pair with fewer keypoints left after any stage is dropped')
    parser.add_argument('--max-keypoints', type=int, default=DEFAULTS.max_keypoints,
                        help='at most this many keypoints a pair (the most confident)')
    parser.add_argument('--min-confidence', type=float, default=DEFAULTS.min_confidence,
                        help='calibrated confidence a match needs (1 - Lowe ratio, 0..1)')
    parser.add_argument('--region-margin', type=float, default=DEFAULTS.region_margin,
                        help='region crops are widened by this fraction of their sides')
    parser.add_argument('--vote-radius', type=float, default=DEFAULTS.vote_radius,
                        help='kept matches lie this close to the dominant box-normalised displacement')
    parser.add_argument('--third-images', type=int, default=DEFAULTS.third_images,
                        help='a keypoint must close its cycle through this many third images of the class')
    parser.add_argument('--cycle-tolerance', type=float, default=DEFAULTS.cycle_tolerance,
                        help="largest cycle error, as a fraction of the longer side of the target's region")
    parser.add_argument('--max-pairs', type=int, help='stop after this many candidate pairs (rerun to resume)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def main(argv=None) -> int:
    parser = arg_parser()
    args = parser.parse_args(argv)
    if args.max_pairs is not None and args.max_pairs < 1:
        parser.error('--max-pairs must be >= 1')
    start = time.perf_counter()
    try:
        list_class_images(args.root)  # a bad folder is reported before the model loads
        settings = WeakPairSettings(
            pairs_per_image=args.pairs_per_image, min_keypoints=args.min_keypoints, max_keypoints=args.max_keypoints,
            min_confidence=args.min_confidence, region_margin=args.region_margin, vote_radius=args.vote_radius,
            third_images=args.third_images, cycle_tolerance=args.cycle_tolerance)
        device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
        model = model_from_config(args.config, args.checkpoint, device, args.max_side)
        description = dict(config=os.path.abspath(args.config) if args.config else 'built-in semantic pair model',
                           checkpoint=os.path.abspath(args.checkpoint) if args.checkpoint else None,
                           checkpoint_sha256=file_sha256(args.checkpoint) if args.checkpoint else None,
                           max_side=model.extractor.max_side, layers=model.extractor.layers)
        meta = make_weak_pairs(args.root, args.out, model, settings, description, not args.no_progress,
                               args.max_pairs)
    except KeyboardInterrupt:
        print('make_weak_pairs: interrupted; rerun the same command to resume', file=sys.stderr)
        return 130
    except (OSError, ValueError, ImportError, CheckpointMismatchError, WeakSupervisionError) as error:
        print(f'make_weak_pairs: error: {error}', file=sys.stderr)
        return 1
    state = 'done' if meta['finished'] else 'stopped early (rerun to resume)'
    print(f'make_weak_pairs: {state}: {meta["pairs"]} pairs, {meta["keypoints"]} keypoints from '
          f'{len(meta["classes"])} classes in {time.perf_counter() - start:.1f} s -> {os.path.abspath(args.out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
