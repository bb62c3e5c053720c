"""The GPU check behind ``tools/device_check.py``: one run that measures the CUDA path and writes one JSON report.

Sections (each a key of the report; a section that fails records ``{'error': ...}`` and the others still run):

- ``environment``: GPU, torch, CUDA, cuDNN, onnxruntime and the CPU (:func:`cpu_info`);
- ``core_parity``: the propagation core on the device against the core on the CPU and the dense reference, on
  identical inputs (argmax agreement, largest soft-label difference); on a CPU the device side runs the CUDA
  code path (all tiles batched) on CPU tensors;
- ``core_speed``: core ms per frame at DAVIS geometry (60 x 107 features, m = 20) for the SFC width (1280) and the
  default model's, exact fp32 and TF32, batched and tile-row paths, peak device memory, and what makes a batched
  step wait for the device (``torch.cuda.set_sync_debug_mode('error')``; empty: nothing);
- ``backbones``: the default model's backbone at 480 x 854 as the runtime runs it, in fp32 and in fp16 and
  bf16 autocast (channels_last): ms per frame and feature parity with fp32;
- ``end_to_end``: ``sfc-propagate`` (:func:`propagate_video`, default model, backbone in fp32 and in fp16) on
  a generated 480p video of several hundred frames: frames/s, stages, peak device memory;
- ``memory_by_length``: peak device memory and RSS of whole runs on 100- and 1000-frame videos (fresh
  processes).

``quick`` shrinks every size (the test suite runs it on the CPU); the code is the same.
"""
import contextlib
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sfc_plugin.propagation import PropagationSettings, ReferencePropagator, TiledPropagator, resolve_select_dtype
from sfc_plugin.utils import image_tensor, write_label_png
from sfc_plugin.utils.memory import peak_rss_mb
from .common import cpu_info, in_fresh_process

SECTIONS = ('environment', 'core_parity', 'core_speed', 'backbones', 'end_to_end', 'memory_by_length')


@dataclass(frozen=True)
class CheckSizes:
    """Sizes of one check run (defaults: the full check on a GPU)."""
    parity_feat: Tuple[int, int] = (30, 54)
    parity_channels: int = 64
    parity_frames: int = 26
    core_feat: Tuple[int, int] = (60, 107)  # DAVIS 480 x 854 at stride 8
    core_channels: Tuple[int, ...] = (1280,)  # plus the default model's width
    core_frames: int = 20  # measured after the context is full
    context_len: int = 20
    image_size: Tuple[int, int] = (480, 854)
    backbone_iters: int = 20
    video_frames: int = 300
    memory_frames: Tuple[int, int] = (100, 1000)


QUICK = CheckSizes(parity_feat=(10, 13), parity_channels=16, parity_frames=7, core_feat=(12, 20),
                   core_channels=(32,), core_frames=2, context_len=4, image_size=(64, 96), backbone_iters=1,
                   video_frames=6, memory_frames=(3, 6))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def _peak_device_mb(device: torch.device) -> Optional[float]:
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1) if device.type == 'cuda' else None


def _dtype_name(dtype: Optional[torch.dtype]) -> Optional[str]:
    return str(dtype) if dtype is not None else None


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-3)


def smooth_features(frames: int, channels: int, size: Tuple[int, int], seed: int = 0) -> List[torch.Tensor]:
    """Unit feature maps of blurred random fields drifting one cell per frame (neighbours alike, as real ones)."""
    g = torch.Generator().manual_seed(seed)
    height, width = size
    field = torch.randn(1, channels, height + 8, width + 8 + frames, generator=g)
    field = F.avg_pool2d(field, 5, stride=1, padding=2)[0]
    noise = torch.randn(frames, channels, height, width, generator=g)
    return [_unit(field[:, 4:4 + height, 4 + t:4 + t + width] + 0.2 * noise[t]) for t in range(frames)]


def soft_labels(num_labels: int, size: Tuple[int, int], seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(num_labels, *size, generator=g), 0)


def environment(device: torch.device) -> dict:
    import onnxruntime
    gpu = device.type == 'cuda'
    properties = torch.cuda.get_device_properties(device) if gpu else None
    return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'device': str(device), 'gpu': properties.name if gpu else None,
            'gpu_capability': list(torch.cuda.get_device_capability(device)) if gpu else None,
            'gpu_memory_gb': round(properties.total_memory / 2 ** 30, 1) if gpu else None,
            'torch': torch.__version__, 'cuda': torch.version.cuda,
            'cudnn': torch.backends.cudnn.version() if gpu else None,
            'onnxruntime': onnxruntime.__version__, 'onnxruntime_providers': onnxruntime.get_available_providers(),
            'python': platform.python_version(), **cpu_info()}


def core_parity(device: torch.device, sizes: CheckSizes) -> dict:
    """The core on ``device`` (its default path; the batched path on a CPU) against the core on the CPU (its
    default path) and the dense reference, through one video of identical inputs."""
    video = smooth_features(sizes.parity_frames, sizes.parity_channels, sizes.parity_feat)
    labels = soft_labels(4, sizes.parity_feat)
    settings = PropagationSettings(context_len=sizes.context_len)  # the SFC / default settings
    # On a CPU the batched path stands in for the device's: it is the exact fp32 path (also on AMX CPUs,
    # whose default selects in fp16 first).
    device_settings = settings.replace(batch_tiles=True, select_dtype=None) if device.type == 'cpu' else settings
    cores = {'device': TiledPropagator(device_settings), 'cpu': TiledPropagator(settings),
             'reference': ReferencePropagator(settings)}
    outputs = {name: [] for name in cores}
    for t, feat in enumerate(video):
        for name, core in cores.items():
            on = device if name == 'device' else torch.device('cpu')
            outputs[name].append(core.step(feat.to(on), labels.to(on) if t == 0 else None).cpu())
    report = {'feature_size': list(sizes.parity_feat), 'channels': sizes.parity_channels,
              'frames': sizes.parity_frames, 'settings': settings.protocol(),
              'cpu_select_dtype': _dtype_name(resolve_select_dtype('auto', 'cpu')),
              'device_path': 'batched tiles' if device.type == 'cpu' or cores['device'].store.geometry.pad_rows
              else 'tile rows'}
    for other in ('cpu', 'reference'):
        pairs = list(zip(outputs['device'], outputs[other]))[1:]
        agree = torch.cat([(a.argmax(0) == b.argmax(0)).flatten() for a, b in pairs]).float().mean()
        report[f'argmax_agreement_vs_{other}'] = round(float(agree), 6)
        report[f'max_soft_diff_vs_{other}'] = float(max((a - b).abs().max() for a, b in pairs))
    return report


def _time_core(device: torch.device, video: List[torch.Tensor], sizes: CheckSizes, batch_tiles: bool,
               tf32: bool) -> dict:
    core = TiledPropagator(PropagationSettings(context_len=sizes.context_len, select_dtype=None,
                                               batch_tiles=batch_tiles))
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        core.step(video[0], soft_labels(6, sizes.core_feat).to(device))
        for feat in video[1:sizes.context_len + 1]:  # fill the window
            core.step(feat)
        _sync(device)
        _reset_peak(device)
        start = time.perf_counter()
        for feat in video[sizes.context_len + 1:]:
            core.step(feat)
        _sync(device)
        seconds = time.perf_counter() - start
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return {'channels': video[0].shape[0], 'path': 'batched tiles' if batch_tiles else 'tile rows',
            'precision': 'tf32' if tf32 else 'fp32', 'tf32_applies': tf32 and device.type == 'cuda',
            'ms_per_frame': round(1e3 * seconds / sizes.core_frames, 3), 'peak_device_mb': _peak_device_mb(device)}


def _syncs_in_step(device: torch.device, sizes: CheckSizes) -> List[str]:
    """What made a batched step on the CUDA ``device`` wait for it (empty: nothing)."""
    video = [f.to(device) for f in smooth_features(3, 16, sizes.core_feat)]
    core = TiledPropagator(PropagationSettings(context_len=sizes.context_len, batch_tiles=True))
    core.step(video[0], soft_labels(3, sizes.core_feat).to(device))
    core.step(video[1])
    _sync(device)
    torch.cuda.set_sync_debug_mode('error')
    try:
        core.step(video[2])
    except RuntimeError as error:
        return [str(error).splitlines()[0]]
    finally:
        torch.cuda.set_sync_debug_mode('default')
    return []


def core_speed(device: torch.device, sizes: CheckSizes, default_channels: int) -> dict:
    runs = []
    for channels in tuple(sizes.core_channels) + (default_channels,):
        video = [f.to(device) for f in smooth_features(sizes.context_len + 1 + sizes.core_frames, channels,
                                                       sizes.core_feat)]
        for batch_tiles, tf32 in ((True, False), (True, True), (False, False)):
            runs.append(_time_core(device, video, sizes, batch_tiles, tf32))
        del video
    report = {'feature_size': list(sizes.core_feat), 'context_len': sizes.context_len,
              'measured_frames': sizes.core_frames, 'runs': runs,
              'batched_step_host_syncs': _syncs_in_step(device, sizes) if device.type == 'cuda' else None}
    return report


def _test_image(size: Tuple[int, int]) -> torch.Tensor:
    from skimage import data
    photo = cv2.resize(data.astronaut(), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image_tensor(photo)


def backbones(device: torch.device, sizes: CheckSizes) -> dict:
    """The default model's backbone as the runtime runs it (``TorchBackend(backbone_dtype=...)``) in fp32, and
    in fp16 and bf16 autocast with channels_last: ms per frame and parity with fp32."""
    from sfc_plugin.runtime.backends import BACKBONE_DTYPES, TorchBackend, default_model
    image = _test_image(sizes.image_size).to(device)
    runs, reference = [], None
    for dtype in BACKBONE_DTYPES:
        backend = TorchBackend.from_config(default_model()[0], None, str(device), backbone_dtype=dtype)
        features = backend.features(image)  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(sizes.backbone_iters):
            features = backend.features(image)
        _sync(device)
        seconds = (time.perf_counter() - start) / sizes.backbone_iters
        reference = features if reference is None else reference
        runs.append({'dtype': dtype, 'ms_per_frame': round(1e3 * seconds, 3),
                     'max_abs_diff_vs_fp32': float((features - reference).abs().max()),
                     'min_cosine_vs_fp32': float((features * reference).sum(0).min())})
    return {'model': 'default', 'image_size': list(sizes.image_size), 'channels': int(reference.shape[0]),
            'feature_size': list(reference.shape[-2:]), 'iterations': sizes.backbone_iters, 'runs': runs}


def write_test_video(folder: str, frames: int, size: Tuple[int, int], seed: int = 0) -> Tuple[str, str]:
    """An mp4 of ``frames`` frames (three textured discs moving over a drifting textured background) and the
    indexed mask of its first frame; returns their paths."""
    rng = np.random.default_rng(seed)
    height, width = size
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width + frames, 3), dtype=np.uint8), (0, 0), 3)
    textures = [cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)
                for _ in range(3)]
    ys, xs = np.mgrid[:height, :width]
    video = os.path.join(folder, 'video.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 30.0, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'{video}: OpenCV cannot write mp4 here')
    first_mask = None
    for t in range(frames):
        frame = background[:, t % frames:t % frames + width].copy()
        mask = np.zeros((height, width), np.uint8)
        for k, texture in enumerate(textures):
            phase = 2 * np.pi * t / max(frames, 60) + 2.1 * k
            cy, cx = height * (0.5 + 0.25 * np.sin(phase)), width * (0.5 + 0.3 * np.cos(phase + k))
            inside = (ys - cy) ** 2 + (xs - cx) ** 2 < (0.12 * min(height, width) * (1 + 0.3 * k)) ** 2
            frame[inside] = texture[inside]
            mask[inside] = k + 1
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        first_mask = mask if first_mask is None else first_mask
    writer.release()
    mask_path = os.path.join(folder, 'first_mask.png')
    write_label_png(mask_path, first_mask)
    return video, mask_path


def _propagation_run(device: str, frames: int, size: Tuple[int, int], warmup: int = 0,
                     backbone_dtype: str = 'float32') -> dict:
    """One ``sfc-propagate`` run of the default model on a generated video (in this process; logs to stderr)."""
    with contextlib.redirect_stdout(sys.stderr):
        return _logged_propagation_run(device, frames, size, warmup, backbone_dtype)


def _logged_propagation_run(device: str, frames: int, size: Tuple[int, int], warmup: int,
                            backbone_dtype: str) -> dict:
    from sfc_plugin.runtime.backends import load_backend
    from sfc_plugin.runtime.pipeline import propagate_video
    backend = load_backend(device=device, backbone_dtype=backbone_dtype)
    loaded_mb = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix='sfc-device-check-') as folder:
        video, mask = write_test_video(folder, frames, size)
        if warmup:
            propagate_video(backend, video, {0: mask}, os.path.join(folder, 'warmup'), max_frames=warmup,
                            progress=False)
        _reset_peak(backend.device)
        summary = propagate_video(backend, video, {0: mask}, os.path.join(folder, 'masks'), progress=False)
    return {'frames': summary['frames'], 'frames_per_second': summary['frames_per_second'],
            'seconds': summary['seconds'], 'stages': summary['stages'], 'peak_device_mb': _peak_device_mb(
                backend.device), 'peak_rss_mb': round(peak_rss_mb(), 1), 'rss_after_load_mb': round(loaded_mb, 1)}


def end_to_end(device: torch.device, sizes: CheckSizes) -> dict:
    """``sfc-propagate`` with the backbone in fp32 and in fp16 autocast (propagation in fp32 for both)."""
    runs = {dtype: _propagation_run(str(device), sizes.video_frames, sizes.image_size,
                                    min(10, sizes.video_frames), dtype) for dtype in ('float32', 'float16')}
    return {'frames': sizes.video_frames, 'frame_size': list(sizes.image_size), 'runs': runs}


def memory_by_length(device: torch.device, sizes: CheckSizes) -> dict:
    runs = {str(count): in_fresh_process(_propagation_run, str(device), count, sizes.image_size)
            for count in sizes.memory_frames}
    short, long = (runs[str(count)] for count in sizes.memory_frames)
    key = 'peak_device_mb' if device.type == 'cuda' else 'peak_rss_mb'
    return {'runs': runs, 'measure': key, 'ratio_long_to_short': round(long[key] / short[key], 4)}


def run_check(device: str = 'cuda', quick: bool = False, sections: Optional[List[str]] = None,
              log: Callable[[str], None] = print) -> dict:
    """Run the check's ``sections`` (default: all) on ``device``; returns the report (every section's key is
    there, ``{'skipped': True}`` for those not asked for, ``{'error': ...}`` for those that failed)."""
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device}: torch {torch.__version__} sees no CUDA device here')
    sizes = QUICK if quick else CheckSizes()
    wanted = list(sections) if sections else list(SECTIONS)
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise ValueError(f'unknown sections {unknown}; choose from {list(SECTIONS)}')
    start = time.perf_counter()
    report: Dict[str, object] = {'quick': quick, 'sizes': asdict(sizes)}
    default_channels = None
    steps = {'environment': lambda: environment(device),
             'core_parity': lambda: core_parity(device, sizes),
             'backbones': lambda: backbones(device, sizes),
             'core_speed': lambda: core_speed(device, sizes, default_channels or _default_width()),
             'end_to_end': lambda: end_to_end(device, sizes),
             'memory_by_length': lambda: memory_by_length(device, sizes)}
    for name in ('environment', 'core_parity', 'backbones', 'core_speed', 'end_to_end', 'memory_by_length'):
        if name not in wanted:
            report[name] = {'skipped': True}
            continue
        log(f'device check: {name} ({time.perf_counter() - start:.0f} s so far)')
        section_start = time.perf_counter()
        try:
            report[name] = steps[name]()
            report[name]['seconds'] = round(time.perf_counter() - section_start, 1)
        except Exception as error:  # a failed section must not lose the others' figures
            report[name] = {'error': f'{type(error).__name__}: {error}',
                            'traceback': traceback.format_exc(limit=8)}
            log(f'device check: {name} failed: {error}')
        if name == 'backbones' and 'channels' in report[name]:
            default_channels = report[name]['channels']
    report['seconds'] = round(time.perf_counter() - start, 1)
    report['failed_sections'] = [name for name in SECTIONS if 'error' in report[name]]
    return report


def _default_width() -> int:
    """Feature channels of the default model (one tiny forward)."""
    from sfc_plugin.runtime.backends import TorchBackend, default_model
    backbone = TorchBackend.from_config(default_model()[0], None, 'cpu').backbone
    with torch.no_grad():
        return int(backbone(torch.zeros(1, 3, 32, 32))[0].shape[0])

