"""One video file or frame folder through a backend into a folder of masks: the job behind ``sfc-propagate``.

Frames are decoded and resized in a reader thread, propagated one at a time (the context stays on the
backend's device, so memory does not grow with the video), and written by a writer thread: each mask as
``OUT/<frame>.png`` (DAVIS layout: the frame file's stem, or the 5-digit frame index of a video), an indexed
PNG with the input palette, written atomically; optionally an overlay video (moved into place when the video
is complete) and a JSON summary. See :mod:`.resume` for ``resume=True``.
"""
import json
import os
import time
from contextlib import nullcontext
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sfc_plugin.deploy.meta import file_sha256
from sfc_plugin.utils import atomic_path, read_label_png, write_label_png
from sfc_plugin.utils.io import ensure_writable_dir
from .backends import Backend
from .masks import Annotations, MaskError, load_annotations
from .propagator import VideoPropagator, prepare_image
from .resume import RunState, completed_frames, resume_plan
from .video_io import BackgroundWriter, FrameSource, OutputError, OverlayVideo, PrefetchReader


def run_signature(backend: Backend, frames: FrameSource, annotations: Annotations,
                  network_size: Tuple[int, int]) -> dict:
    """What decides a run's masks (checked by ``resume``)."""
    signature = backend.signature()
    signature.update(video=os.path.abspath(frames.path), frame_size=list(frames.size),
                     network_size=list(network_size), label_values=annotations.label_values,
                     masks={str(frame): file_sha256(path) for frame, path in sorted(annotations.paths.items())})
    return signature


def write_summary(summary: dict, path: str) -> None:
    """Write ``summary`` as JSON, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(summary, f, indent=2)
            f.write('\n')


def _check_keyframes(annotations: Annotations, num_frames: int, video: str) -> None:
    late = sorted(frame for frame in annotations.masks if frame >= num_frames)
    if late:
        raise MaskError(f'{", ".join(annotations.paths[frame] for frame in late)}: keyframe {late} past the last '
                        f'frame ({num_frames - 1}) of {video}')


def propagate_video(backend: Backend,
                    video: str,
                    masks: Dict[int, str],
                    out_dir: str,
                    overlay: Optional[str] = None,
                    summary: Optional[str] = None,
                    resume: bool = False,
                    max_frames: Optional[int] = None,
                    progress: bool = True) -> dict:
    """Propagate the annotated masks through a video and write a mask per frame.

    Args:
        backend: see :mod:`.backends` (loaded once, reused across videos).
        video: a video file (mp4/avi/mkv/webm...) or a folder of frames.
        masks: ``{frame index: mask file}``; frame 0 is required, later ones are keyframes (see :mod:`.masks`).
        out_dir: folder of the masks (created).
        overlay: optional overlay video path (.mp4, .avi, .mkv, .webm).
        summary: optional JSON summary path.
        resume: continue a stopped run in ``out_dir`` (see :mod:`.resume`); an output folder without masks
            starts afresh, a finished run is left as it is.
        max_frames: stop after this many frames (a later ``resume`` goes on from there).
        progress: show a progress bar.
    Returns:
        The summary (frames, seconds, frames/s per stage, backend, execution provider, device, settings).
    Raises:
        VideoReadError, MaskError, OutputError, ResumeError (and the backend's errors), each naming the file;
        frames written before the error stay complete.
    """
    start = time.perf_counter()
    frames = FrameSource(video)
    annotations = load_annotations(masks)
    annotations.check_frame_size(frames.size, video)
    annotations.check_num_labels(backend.max_labels, f'the {backend.name} model')
    if frames.declared_frames is not None:
        _check_keyframes(annotations, frames.declared_frames, video)
    ensure_writable_dir(out_dir, OutputError, 'the output')
    network_size = backend.input_size(frames.size)
    state = RunState(out_dir, run_signature(backend, frames, annotations, network_size))
    done = completed_frames(out_dir, frames.frame_name, frames.declared_frames) if resume else 0
    if resume and (done or state.exists()):
        if state.resume() and overlay is None:  # a finished run: nothing to do
            return _finish(backend, frames, annotations, network_size, out_dir, None, summary, {}, done, 0, done,
                           time.perf_counter() - start, complete=True)
    else:  # a fresh run (also a resumed one that had not written anything)
        state.start()
    plan = resume_plan(done, annotations.masks, backend.context_len)
    propagator = VideoPropagator(backend, annotations.label_values)
    palette = annotations.palette
    print_log(f'{video}: {frames.size[1]}x{frames.size[0]} frames, network input {network_size[1]}x'
              f'{network_size[0]}, {len(annotations.label_values)} labels, {backend.name} on {backend.device}'
              + (f', resuming at frame {done}' if done else ''), logger='current')

    def prepare(index: int, rgb: np.ndarray) -> Optional[torch.Tensor]:
        if index < done and index not in plan:
            return None  # a frame of the stopped run that the context does not need
        return prepare_image(rgb, network_size)

    def write(item: tuple) -> None:
        index, rgb, ids, labels = item
        name = frames.frame_name(index)
        path = os.path.join(out_dir, f'{name}.png')
        if ids is None:  # a frame of the stopped run, for the overlay: its mask is on disk
            ids, _ = read_label_png(path, require_indexed=False)
        else:
            if labels is not None:
                state.save_labels(name, labels)  # before the mask: a mask on disk implies its labels
            write_label_png(path, ids, palette)
            if index >= backend.context_len:
                state.drop_labels(frames.frame_name(index - backend.context_len))
        if overlay_video is not None:
            overlay_video.write(rgb, ids, palette)

    num_frames = written = 0
    exhausted = False  # every frame of the video was read
    pending = None  # (index, rgb, HostFrame, annotated) of the last frame queued on the device, not yet handed on

    def hand_on() -> None:
        """Give the pending frame to the writer once its copy to the host is done (the device meanwhile runs
        the next frame's work, which the caller queued first)."""
        nonlocal pending
        if pending is not None:
            index, rgb, host, annotated = pending
            pending = None
            ids, soft = host.numpy()
            writer.put((index, rgb, ids, None if annotated else soft))

    with (OverlayVideo(overlay, frames.fps, frames.size) if overlay else nullcontext()) as overlay_video:
        reader = PrefetchReader(frames, prepare)
        writer = BackgroundWriter(write)
        completed = False
        try:
            with _progress(progress) as bar:
                task = bar.add_task(os.path.basename(os.path.normpath(video)), total=frames.declared_frames,
                                    fps=0.0)
                for index, rgb, image in reader:
                    if max_frames is not None and index >= max_frames:
                        break
                    num_frames = index + 1
                    if index < done:
                        if index in plan:
                            mask = annotations.masks.get(index)
                            labels = None if mask is not None else torch.from_numpy(
                                state.load_labels(frames.frame_name(index)))
                            propagator.restore(image, plan[index] == 'annotate', mask=mask, labels=labels)
                        if overlay_video is not None:
                            writer.put((index, rgb, None, None))
                    else:
                        mask = annotations.masks.get(index)
                        host = propagator.step(image, frames.size, mask)
                        hand_on()
                        pending = (index, rgb, host, mask is not None)
                        written += 1
                    bar.update(task, completed=num_frames, fps=written / max(time.perf_counter() - start, 1e-9))
                else:
                    exhausted = True
            completed = True
        finally:
            hand_on()  # the last computed frame is written, also after an error or Ctrl-C
            reader.close()
            # Write what was computed, also after an error or Ctrl-C (that error is the one raised).
            writer.close(raise_error=completed)
        if overlay_video is not None:
            overlay_video.commit()
    if exhausted:
        _check_keyframes(annotations, num_frames, video)
        state.finish()
    stages = {'decode': (reader.seconds, num_frames), 'backbone': (propagator.seconds['backbone'], written),
              'propagate': (propagator.seconds['propagate'], written),
              'postprocess': (propagator.seconds['postprocess'], written), 'write': (writer.seconds, written)}
    return _finish(backend, frames, annotations, network_size, out_dir, overlay, summary, stages, num_frames, written,
                   done if resume else None, time.perf_counter() - start, complete=exhausted)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(),
                    TextColumn('{task.fields[fps]:.1f} frames/s'), TimeElapsedColumn(), disable=not enabled)


def _finish(backend: Backend, frames: FrameSource, annotations: Annotations, network_size: Tuple[int, int],
            out_dir: str, overlay: Optional[str], summary_path: Optional[str], stages: dict, num_frames: int,
            written: int, resumed_at: Optional[int], seconds: float, complete: bool) -> dict:
    """The run's summary (written to ``summary_path`` if given), logged in one line."""
    description = backend.describe()
    summary = {
        'video': os.path.abspath(frames.path), 'out_dir': os.path.abspath(out_dir),
        'overlay': os.path.abspath(overlay) if overlay else None,
        'frames': num_frames, 'written_frames': written, 'resumed_at_frame': resumed_at, 'complete': complete,
        'seconds': round(seconds, 3), 'frames_per_second': round(written / seconds, 2) if seconds > 0 else None,
        'stages': {name: {'seconds': round(stage_seconds, 4),
                          'frames_per_second': round(count / stage_seconds, 2) if stage_seconds > 0 else None}
                   for name, (stage_seconds, count) in stages.items()},
        'backend': description['backend'], 'execution_provider': description['execution_provider'],
        'device': description['device'], 'model': description['model'],
        'settings': dict(description['settings'], network_size=list(network_size)),
        'frame_size': list(frames.size), 'label_values': annotations.label_values,
        'masks': {str(frame): os.path.abspath(path) for frame, path in sorted(annotations.paths.items())},
        'torch_version': torch.__version__,
    }
    if summary_path:
        write_summary(summary, summary_path)
    print_log(f'{frames.path}: {written} masks written in {seconds:.1f} s ({written / max(seconds, 1e-9):.1f} '
              f'frames/s) -> {out_dir}', logger='current')
    return summary
