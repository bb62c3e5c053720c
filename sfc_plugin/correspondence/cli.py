"""``sfc-match``: transfer points from one image to another with a correspondence model, from the shell.

    sfc-match IMAGE_A IMAGE_B [--points X,Y ...] [--grid-step PX] [--out DIR]
              [--matcher nn|mutual_nn|soft_argmax|kernel_soft_argmax|ot_rhm] [--flip off|auto]
              [--max-side PX] [--config CFG [--checkpoint CKPT]] [--device DEV] [--cfg-options ...]

Without ``--points`` a regular grid of A's pixels is transferred. With ``--flip auto`` B is also
matched left-right mirrored, and the orientation whose features agree better with A's is used
(``matches.json`` says which). Writes ``DIR/matches.json`` (each
point of A, its match in B or null, and a score; 0-based pixels) and ``DIR/matches.png`` (A and B
side by side, a line per match), both atomically. Without ``--config`` the built-in semantic pair
model runs (``sfc_plugin/assets/semantic_pair_model.py``: the features, layers, input size, matcher
and flip mode chosen on the tune split of the project's semantic pair set); ``--matcher``,
``--flip``, ``--max-side`` and ``--layers`` override a config's settings. The matching is
``PairMatchingModel.transfer``, the code the pair benchmarks evaluate.
Errors a user can fix (a missing, corrupt, grayscale or tiny image, a point outside A, a config
without a backbone, an unwritable folder...) are printed as one message naming the file or point,
with exit status 1; Ctrl-C exits with 130.
"""
import argparse
import inspect
import os
import sys
import time
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.registry import DefaultScope

from sfc_plugin.registry import MODELS, SCOPE
from sfc_plugin.utils import atomic_path, write_json
from sfc_plugin.utils.assets import SEMANTIC_PAIR_MODEL_CONFIG
from sfc_plugin.utils.cli import USER_ERRORS, run_command
from sfc_plugin.utils.io import ensure_writable_dir
from .matching import MATCHERS
from .model import PairMatchingModel

MIN_SIDE = 32  # at stride 8: 4 cells


class MatchInputError(ValueError):
    """An input image or point that cannot be matched; the message names it."""


def read_colour_image(path: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file; MatchInputError naming the file if missing, corrupt,
    grayscale or smaller than ``MIN_SIDE`` pixels on a side."""
    if not os.path.isfile(path):
        raise MatchInputError(f'{path}: no such image file')
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MatchInputError(f'{path}: cannot decode the image (corrupt or not an image)')
    if image.ndim == 2 or image.shape[2] == 1:
        raise MatchInputError(f'{path}: grayscale image (1 channel); the models take colour (RGB) images')
    if image.dtype != np.uint8:
        raise MatchInputError(f'{path}: {image.dtype} pixels; expected 8-bit colour')
    if min(image.shape[:2]) < MIN_SIDE:
        raise MatchInputError(f'{path}: {image.shape[1]}x{image.shape[0]} pixels is too small (at least '
                              f'{MIN_SIDE} on each side)')
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def parse_points(texts: Sequence[str], size: Tuple[int, int], path: str) -> np.ndarray:
    """``['x,y', ...]`` -> (N, 2) float; MatchInputError for a malformed point or one outside the image."""
    height, width = size
    points = []
    for text in texts:
        try:
            x, y = (float(value) for value in text.split(','))
        except ValueError:
            raise MatchInputError(f'--points {text!r}: expected X,Y (pixels, 0-based), e.g. 120,45') from None
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise MatchInputError(f'--points {text}: outside {path} ({width}x{height} pixels: x in 0..{width - 1}, '
                                  f'y in 0..{height - 1})')
        points.append((x, y))
    return np.asarray(points, np.float64).reshape(-1, 2)


def grid_points(size: Tuple[int, int], step: int) -> np.ndarray:
    """(N, 2) pixel centres of a grid of ``step`` pixels (offset by half a step)."""
    ys, xs = np.mgrid[step // 2:size[0]:step, step // 2:size[1]:step]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def load_pair_model(config: Optional[str], checkpoint: Optional[str], cfg_options: Optional[dict], device: str,
                    settings: dict, allow_pickle: bool = False):
    """The ``PairMatchingModel`` of a config, weights loaded strictly, with ``settings`` (matcher, flip,
    max_side, layers; None: keep) over the config's. A config of another model with a backbone (e.g. a
    propagation config) gives its backbone, matched with OT-RHM at a 320-pixel longer side unless set."""
    from sfc_plugin.apis.inference import init_model, load_config
    config = config or SEMANTIC_PAIR_MODEL_CONFIG
    cfg = load_config(config, cfg_options)
    if 'backbone' not in cfg.get('model', {}):
        raise ValueError(f'{config}: model has no backbone (give an evaluation config, e.g. configs/pair/*.py)')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', SCOPE)):
        model_type = MODELS.get(cfg.model['type']) if isinstance(cfg.model.get('type'), str) else cfg.model.get('type')
    if isinstance(model_type, type) and issubclass(model_type, PairMatchingModel):  # also a learned matcher
        model_cfg = {key: value for key, value in cfg.model.items() if key != 'out_dir'}
    else:
        model_type = PairMatchingModel
        model_cfg = dict(backbone=cfg.model.backbone, matcher=dict(method='ot_rhm'), max_side=320)
    model_cfg['type'] = model_type
    if settings.get('matcher') is not None:
        model_cfg['matcher'] = dict(model_cfg.get('matcher') or {}, method=settings['matcher'])
    if settings.get('max_side') is not None:
        if 'max_side' not in inspect.signature(model_type).parameters:
            raise ValueError(f'{config}: {model_type.__name__} runs at the input size it was trained at; '
                             f'--max-side does not apply')
        model_cfg.update(max_side=settings['max_side'], input_size=None)
    for key in ('flip', 'layers'):
        if settings.get(key) is not None:
            model_cfg[key] = settings[key]
    model = init_model(cfg, model_cfg, checkpoint, allow_pickle)
    if model.method == 'box_prior' or model.matcher.box_prior_sigma is not None or model.flip == 'annotated':
        raise ValueError(f'{config}: sfc-match has no object boxes or annotations; its matcher must use features '
                         f'only (method {model.method}, box_prior_sigma, flip {model.flip!r})')
    return model.to(device).eval()


def draw_matches(image_a: np.ndarray, image_b: np.ndarray, points_a: np.ndarray, points_b: np.ndarray,
                 scores: np.ndarray) -> np.ndarray:
    """A and B side by side (RGB), a line and two dots per match, coloured by score (blue low, red high)."""
    height = max(image_a.shape[0], image_b.shape[0])
    canvas = np.zeros((height, image_a.shape[1] + image_b.shape[1], 3), np.uint8)
    canvas[:image_a.shape[0], :image_a.shape[1]] = image_a
    canvas[:image_b.shape[0], image_a.shape[1]:] = image_b
    matched = np.isfinite(points_b).all(axis=1)
    if matched.any():
        finite = scores[matched]
        span = max(float(finite.max() - finite.min()), 1e-9)
        levels = ((scores - finite.min()) / span * 255).clip(0, 255)
        colours = cv2.applyColorMap(np.nan_to_num(levels).astype(np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1]
        for (xa, ya), (xb, yb), colour, ok in zip(points_a, points_b, colours, matched):
            if not ok:
                continue
            start = (int(round(xa)), int(round(ya)))
            end = (int(round(xb)) + image_a.shape[1], int(round(yb)))
            colour = tuple(int(c) for c in colour)
            cv2.line(canvas, start, end, colour, 1, cv2.LINE_AA)
            cv2.circle(canvas, start, 3, colour, -1, cv2.LINE_AA)
            cv2.circle(canvas, end, 3, colour, -1, cv2.LINE_AA)
    return canvas


def arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='sfc-match', description='Transfer points from image A to image B by '
                                                                   'dense feature matching')
    parser.add_argument('image_a', metavar='IMAGE_A', help='source image (colour)')
    parser.add_argument('image_b', metavar='IMAGE_B', help='target image (colour)')
    parser.add_argument('--points', nargs='+', metavar='X,Y', help='points of A (0-based pixels); default: a grid')
    parser.add_argument('--grid-step', type=int, default=32, help='grid spacing in pixels of A without --points')
    parser.add_argument('--out', default='sfc_match', help='output folder (matches.json, matches.png)')
    parser.add_argument('--matcher', choices=MATCHERS,
                        help="default: the model config's; nn, mutual_nn (non-mutual points get no match), "
                             "soft_argmax (CATs'), kernel_soft_argmax (SFNet's) or ot_rhm (SCOT)")
    parser.add_argument('--flip', choices=('off', 'auto'),
                        help="default: the model config's; auto: also match against B mirrored left-right and keep "
                             'the orientation whose feature layout agrees better with A (objects facing opposite ways)')
    parser.add_argument('--max-side', type=int,
                        help="images are resized so that the longer side has this many pixels before the network "
                             "(default: the model config's)")
    parser.add_argument('--layers', nargs='+', help='hyperpixel layers (backbone submodule names), e.g. '
                                                    'fine_grained.layer2 fine_grained.layer3')
    parser.add_argument('--config', help='evaluation config with a backbone (default: the built-in model)')
    parser.add_argument('--checkpoint', help='weights of --config (keys backbone.*), loaded strictly')
    parser.add_argument('--device', help='torch device (default: CUDA if available, else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument('--unsafe-pickle', action='store_true',
                        help='load a checkpoint that is a full pickle (runs code: trusted files only)')
    parser.add_argument('--no-progress', action='store_true', help='no progress messages')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``sfc-match``; returns the exit status (0 ok, 1 error, 130 interrupted)."""
    parser = arg_parser()
    args = parser.parse_args(argv)
    if args.grid_step < 1:
        parser.error('--grid-step must be >= 1')
    if args.checkpoint and not args.config:
        parser.error('--checkpoint goes with --config')

    def say(message: str) -> None:
        if not args.no_progress:
            print(f'sfc-match: {message}', file=sys.stderr, flush=True)

    return run_command('sfc-match', lambda: _run(args, say), USER_ERRORS,
                       'interrupted; nothing half-written was left behind')


def _run(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    start = time.perf_counter()
    image_a, image_b = read_colour_image(args.image_a), read_colour_image(args.image_b)
    points = (parse_points(args.points, image_a.shape[:2], args.image_a) if args.points
              else grid_points(image_a.shape[:2], args.grid_step))
    ensure_writable_dir(args.out, MatchInputError, 'the matches')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: torch sees no CUDA device here')
    say(f'loading the model ({args.config or "built-in semantic pair model"}) on {device}')
    model = load_pair_model(args.config, args.checkpoint, args.cfg_options, device,
                            dict(matcher=args.matcher, flip=args.flip, max_side=args.max_side, layers=args.layers),
                            args.unsafe_pickle)
    say(f'features of {args.image_a} and {args.image_b}')
    features_a, features_b = model.extractor(image_a), model.extractor(image_b)
    say(f'matching {len(points)} points ({model.method}, flip {model.flip})')
    match = model.transfer(features_a, features_b,
                           lambda: model.extractor(np.ascontiguousarray(image_b[:, ::-1])), points,
                           name=f'{args.image_a} -> {args.image_b}')
    if match.orientation_scores is not None:
        say(f'orientation scores {match.orientation_scores[0]:.4f} (as is), {match.orientation_scores[1]:.4f} '
            f'(mirrored): matched B {"mirrored" if match.target_mirrored else "as is"}')
    matched = np.isfinite(match.points).all(axis=1)
    record = dict(
        image_a=os.path.abspath(args.image_a), image_b=os.path.abspath(args.image_b),
        size_a=list(image_a.shape[1::-1]), size_b=list(image_b.shape[1::-1]),
        coordinates='x, y pixels, 0-based (pixel centres at integers); b null: no match',
        model=dict(config=os.path.abspath(args.config or SEMANTIC_PAIR_MODEL_CONFIG), checkpoint=args.checkpoint,
                   layers=model.extractor.layers, max_side=model.extractor.max_side),
        matcher=dict(model.matcher.describe(), method=model.method), flip=model.flip,
        b_mirrored=bool(match.target_mirrored), orientation_scores=match.orientation_scores,
        matches=[dict(a=[float(x), float(y)], b=[float(v) for v in point_b] if ok else None, score=float(score))
                 for (x, y), point_b, score, ok in zip(points, match.points, match.scores, matched)])
    write_json(os.path.join(args.out, 'matches.json'), record)
    picture = draw_matches(image_a, image_b, points, match.points, match.scores)
    with atomic_path(os.path.join(args.out, 'matches.png')) as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise OSError(f'{os.path.join(args.out, "matches.png")}: could not write the picture')
    print(f'sfc-match: {int(matched.sum())} of {len(points)} points matched in {time.perf_counter() - start:.1f} s '
          f'-> {os.path.join(os.path.abspath(args.out), "matches.json")}, matches.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
