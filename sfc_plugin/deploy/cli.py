"""``sfc-export``: ONNX export, TensorRT engines and the TensorRT-compatibility check, from the shell.

    sfc-export onnx CONFIG [CHECKPOINT] --out DIR [--image-size H W] [--dynamic] [--num-labels K] [--fp16 ...]
    sfc-export tensorrt DIR [--fp16] [--min HxW --opt HxW --max HxW] [--workspace MB] [--timing-cache FILE]
    sfc-export check MODEL.onnx | DIR

Errors a user can fix (missing files, a checkpoint that does not fit, impossible sizes, an unwritable
folder, no TensorRT) are printed as one plain message and exit with status 1.
"""
import argparse
import os
import sys
from typing import List, Optional

from mmengine.config import DictAction

from sfc_plugin.utils.cli import USER_ERRORS as BASE_USER_ERRORS
from sfc_plugin.utils.cli import run_command
from .meta import MODEL_FILES, ExportFormatError, load_export_meta
from .onnx_export import DEFAULT_NUM_LABELS, DEFAULT_OPSET, ExportError, ExportOptions, export_onnx
from .tensorrt_engine import (EngineMismatchError, TensorRTUnavailableError, build_export_engines,
                              parse_image_size)
from .trt_compat import check_tensorrt_compatibility

USER_ERRORS = BASE_USER_ERRORS + (ExportError, ExportFormatError, TensorRTUnavailableError, EngineMismatchError)


def arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='sfc-export', description='Export SFC models to ONNX and TensorRT')
    commands = parser.add_subparsers(dest='command', required=True)

    onnx = commands.add_parser('onnx', help='backbone.onnx, propagate.onnx and meta.json from a config')
    onnx.add_argument('config', help='evaluation config (a PropagationModel)')
    onnx.add_argument('checkpoint', nargs='?', default=None,
                      help="weights, loaded strictly (omit when the config's init_cfg sets every weight)")
    onnx.add_argument('--out', required=True, help='export folder (created; an export there is replaced)')
    onnx.add_argument('--image-size', nargs=2, type=int, metavar=('H', 'W'),
                      help="image size (default: the config's input_size, else 480 854)")
    onnx.add_argument('--dynamic', action='store_true', help='dynamic image height and width in backbone.onnx')
    onnx.add_argument('--num-labels', type=int, default=DEFAULT_NUM_LABELS,
                      help='label channels K of propagate.onnx, background included (videos with fewer labels '
                           f'pad with zero channels; default {DEFAULT_NUM_LABELS})')
    onnx.add_argument('--fp16', action='store_true',
                      help='FP16 backbone (normalisations stay FP32); how TensorRT 11 gets FP16')
    onnx.add_argument('--fp16-propagate', action='store_true',
                      help='with --fp16, FP16 affinities in propagate.onnx too (faster, approximate top-k)')
    onnx.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    onnx.add_argument('--no-verify', action='store_true', help='skip the onnxruntime-vs-PyTorch parity check')
    onnx.add_argument('--unsafe-pickle', action='store_true',
                      help='load a checkpoint that is a full pickle (runs code: trusted files only)')
    onnx.add_argument('--cfg-options', nargs='+', action=DictAction,
                      help='override config settings, e.g. model.propagation.context_len=10')

    trt = commands.add_parser('tensorrt', help='TensorRT engines for an export folder (needs TensorRT and a GPU)')
    trt.add_argument('export_dir', help='folder written by sfc-export onnx')
    trt.add_argument('--fp16', action='store_true',
                     help='FP16 builder flag for an FP32 backbone (TensorRT 10 only; on 11 export with --fp16); the '
                          'propagation engine keeps the precision of propagate.onnx')
    trt.add_argument('--min', type=parse_image_size, metavar='HxW', help='smallest image of a dynamic backbone')
    trt.add_argument('--opt', type=parse_image_size, metavar='HxW', help='image size to optimise for')
    trt.add_argument('--max', type=parse_image_size, metavar='HxW', help='largest image of a dynamic backbone')
    trt.add_argument('--workspace', type=int, metavar='MB', help='builder workspace memory limit')
    trt.add_argument('--timing-cache', metavar='FILE', help='timing cache, read if present and updated')
    trt.add_argument('--tf32', action='store_true',
                     help='allow TF32 in the FP32 backbone (faster, less exact); never in the propagation step')
    trt.add_argument('--models', nargs='+', choices=sorted(MODEL_FILES), default=sorted(MODEL_FILES),
                     help='which engines to build (default: both)')

    check = commands.add_parser('check', help='TensorRT-compatibility check of ONNX models (no TensorRT needed)')
    check.add_argument('models', nargs='+', help='.onnx files, or export folders (both models, checked against '
                                                 'their meta.json)')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``sfc-export``; returns the exit status (0 ok, 1 error, 130 interrupted)."""
    args = arg_parser().parse_args(argv)
    return run_command(f'sfc-export {args.command}', lambda: _run(args), USER_ERRORS,
                       'interrupted; an export folder is complete only once its meta.json is written')


def _run(args: argparse.Namespace) -> int:
    if args.command == 'onnx':
        options = ExportOptions(image_size=args.image_size, dynamic=args.dynamic, num_labels=args.num_labels,
                                fp16=args.fp16, fp16_propagate=args.fp16_propagate, opset=args.opset,
                                verify=not args.no_verify)
        export_onnx(args.config, args.checkpoint, args.out, options, args.cfg_options, args.unsafe_pickle)
        return 0
    if args.command == 'tensorrt':
        sidecars = build_export_engines(args.export_dir, args.fp16, args.min, args.opt, args.max, args.workspace,
                                        args.timing_cache, args.tf32, args.models)
        for name, sidecar in sidecars.items():
            print(f'{name}: TensorRT {sidecar["tensorrt_version"]}, {sidecar["gpu_name"]}, {sidecar["precision"]}')
        return 0
    return _check(args.models)


def _check(paths: List[str]) -> int:
    failed = False
    for path in paths:
        if os.path.isdir(path):
            meta = load_export_meta(path)
            allowed = {'backbone': {'image': (2, 3)} if meta.dynamic else {}, 'propagate': {}}
            targets = [(meta.model_path(path, name), allowed[name]) for name in MODEL_FILES]
        elif os.path.isfile(path):
            targets = [(path, None)]
        else:
            raise FileNotFoundError(f'{path}: no such ONNX file or export folder')
        for model_path, allowed_dynamic in targets:
            report = check_tensorrt_compatibility(model_path, allowed_dynamic)
            print(report.summary(model_path))
            failed |= not report.ok
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
