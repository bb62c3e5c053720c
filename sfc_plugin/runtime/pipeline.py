"""One video file or frame folder through a backend into a folder of masks: the job behind ``sfc-propagate``.

Frames are decoded and resized in a reader thread, propagated one at a time (the context stays on the
backend's device, so memory does not grow with the video), and written by a writer thread: each mask as
``OUT/<frame>.png`` (DAVIS layout: the frame file's stem, or the 5-digit frame index of a video), an indexed
PNG with the input palette, written atomically; optionally an overlay video (moved into place when the video
is complete) and a JSON summary. See :mod:`.resume` for ``resume=True``.
"""
import logging
import os
import time
from contextlib import nullcontext
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sfc_plugin.utils import file_sha256, prepare_image, read_label_png, write_json, write_label_png
from sfc_plugin.utils.io import ensure_writable_dir
from .backends import Backend
from .masks import Annotations, MaskError, load_annotations
from .presence import DEFAULT_VANISH_FRAMES, ObjectPresence
from .propagator import VideoPropagator
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
                    progress: bool = True,
                    vanish_frames: int = DEFAULT_VANISH_FRAMES) -> dict:
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
        vanish_frames: report an object whose mask stays empty for this many frames (see :mod:`.presence`).
    Returns:
        The summary (frames, seconds, frames/s per stage, backend, execution provider, device, settings, and
        per object where its mask vanished).
    Raises:
        VideoReadError, MaskError, OutputError, ResumeError (and the backend's errors), each naming the file;
        frames written before the error stay complete.
    """
    run = VideoRun(backend, video, masks, out_dir, overlay, resume, vanish_frames)
    if run.finished_before():
        return run.summary(summary)
    run.propagate(max_frames, progress)
    return run.summary(summary)


class VideoRun:
    """One video through a backend: the checked inputs, the resume state, the frame loop and its figures.

    Args: as :func:`propagate_video`.
    """

    def __init__(self, backend: Backend, video: str, masks: Dict[int, str], out_dir: str, overlay: Optional[str],
                 resume: bool, vanish_frames: int = DEFAULT_VANISH_FRAMES) -> None:
        self.start = time.perf_counter()
        self.backend, self.video, self.out_dir, self.overlay, self.resume = backend, video, out_dir, overlay, resume
        self.frames = FrameSource(video)
        self.annotations = load_annotations(masks)
        self.annotations.check_frame_size(self.frames.size, video)
        self.annotations.check_num_labels(backend.max_labels, f'the {backend.name} model')
        if self.frames.declared_frames is not None:
            _check_keyframes(self.annotations, self.frames.declared_frames, video)
        ensure_writable_dir(out_dir, OutputError, 'the output')
        self.network_size = backend.input_size(self.frames.size)
        self.state = RunState(out_dir, run_signature(backend, self.frames, self.annotations, self.network_size))
        self.done = completed_frames(out_dir, self.frames.frame_name, self.frames.declared_frames) if resume else 0
        self.plan = resume_plan(self.done, self.annotations.masks, backend.context_len)
        self.num_frames = self.written = 0
        self.complete = False  # every frame of the video was read
        self.stages: Dict[str, Tuple[float, int]] = {}
        self.presence = ObjectPresence(self.annotations.label_values, vanish_frames)
        self.propagator: Optional[VideoPropagator] = None
        self.writer: Optional[BackgroundWriter] = None
        self.overlay_video: Optional[OverlayVideo] = None
        self.pending = None  # (index, rgb, HostFrame, annotated) of the last frame queued on the device, not handed on

    def finished_before(self) -> bool:
        """A resumed run that had finished (and no overlay is asked for): nothing to do. Otherwise starts the run
        state of a fresh run (also of a resumed one that had not written anything)."""
        if self.resume and (self.done or self.state.exists()):
            if self.state.resume() and self.overlay is None:
                self.num_frames, self.complete = self.done, True
                if self.state.presence is not None:
                    self.presence.restore(self.state.presence)
                else:  # finished by a version that did not keep the counts
                    for index in range(self.done):
                        self.presence.add(index, self._written_mask(index))
                return True
            return False
        self.state.start()
        return False

    def propagate(self, max_frames: Optional[int], progress: bool) -> None:
        """Read, propagate and write the frames (up to ``max_frames``)."""
        self.propagator = VideoPropagator(self.backend, self.annotations.codec)
        size, network_size = self.frames.size, self.network_size
        print_log(f'{self.video}: {size[1]}x{size[0]} frames, network input {network_size[1]}x{network_size[0]}, '
                  f'{len(self.annotations.label_values)} labels, {self.backend.name} on {self.backend.device}'
                  + (f', resuming at frame {self.done}' if self.done else ''), logger='current')
        overlay = OverlayVideo(self.overlay, self.frames.fps, size) if self.overlay else nullcontext()
        with overlay as self.overlay_video:
            reader = PrefetchReader(self.frames, self._prepare)
            self.writer = BackgroundWriter(self._write)
            completed = False
            try:
                with _progress(progress) as bar:
                    task = bar.add_task(os.path.basename(os.path.normpath(self.video)),
                                        total=self.frames.declared_frames, fps=0.0)
                    for index, rgb, image in reader:
                        if max_frames is not None and index >= max_frames:
                            break
                        self.num_frames = index + 1
                        self._frame(index, rgb, image)
                        bar.update(task, completed=self.num_frames,
                                   fps=self.written / max(time.perf_counter() - self.start, 1e-9))
                    else:
                        self.complete = True
                completed = True
            finally:
                self._hand_on()  # the last computed frame is written, also after an error or Ctrl-C
                reader.close()
                # Write what was computed, also after an error or Ctrl-C (that error is the one raised).
                self.writer.close(raise_error=completed)
            if self.overlay_video is not None:
                self.overlay_video.commit()
        if self.complete:
            _check_keyframes(self.annotations, self.num_frames, self.video)
            self.state.finish(self.presence.state())
        seconds = self.propagator.seconds
        self.stages = {'decode': (reader.seconds, self.num_frames), 'backbone': (seconds['backbone'], self.written),
                       'propagate': (seconds['propagate'], self.written),
                       'postprocess': (seconds['postprocess'], self.written),
                       'write': (self.writer.seconds, self.written)}

    def _prepare(self, index: int, rgb: np.ndarray) -> Optional[torch.Tensor]:
        """The network input of a frame (in the reader thread); None for a frame of the stopped run that the
        context does not need."""
        if index < self.done and index not in self.plan:
            return None
        return prepare_image(rgb, self.network_size)

    def _frame(self, index: int, rgb: np.ndarray, image: Optional[torch.Tensor]) -> None:
        """Restore a frame of the stopped run into the context, or propagate a new one."""
        if index < self.done:
            if index in self.plan:
                mask = self.annotations.masks.get(index)
                labels = None if mask is not None else torch.from_numpy(
                    self.state.load_labels(self.frames.frame_name(index)))
                self.propagator.restore(image, self.plan[index] == 'annotate', mask=mask, labels=labels)
            self.writer.put((index, rgb, None, None))  # for the overlay and the object counts
            return
        mask = self.annotations.masks.get(index)
        host = self.propagator.step(image, mask, rgb)
        self._hand_on()
        self.pending = (index, rgb, host, mask is not None)
        self.written += 1

    def _hand_on(self) -> None:
        """Give the pending frame to the writer once its copy to the host is done (the device meanwhile runs
        the next frame's work, which the caller queued first)."""
        if self.pending is not None:
            index, rgb, host, annotated = self.pending
            self.pending = None
            ids, soft = host.numpy()
            self.writer.put((index, rgb, ids, None if annotated else soft))

    def _write(self, item: tuple) -> None:
        """Write a frame's mask (and its soft labels, for a resume) and its overlay frame (writer thread)."""
        index, rgb, ids, labels = item
        name = self.frames.frame_name(index)
        path = os.path.join(self.out_dir, f'{name}.png')
        palette = self.annotations.palette
        if ids is None:  # a frame of the stopped run: its mask is on disk
            ids = self._written_mask(index)
        else:
            if labels is not None:
                self.state.save_labels(name, labels)  # before the mask: a mask on disk implies its labels
            write_label_png(path, ids, palette)
            if index >= self.backend.context_len:
                self.state.drop_labels(self.frames.frame_name(index - self.backend.context_len))
        self.presence.add(index, ids)
        if self.overlay_video is not None:
            self.overlay_video.write(rgb, ids, palette)

    def _written_mask(self, index: int) -> np.ndarray:
        """The (H, W) ids of a mask this run or a stopped one wrote."""
        ids, _ = read_label_png(os.path.join(self.out_dir, f'{self.frames.frame_name(index)}.png'),
                                require_indexed=False)
        return ids

    def summary(self, summary_path: Optional[str]) -> dict:
        """The run's summary (written to ``summary_path`` if given), logged in one line."""
        seconds = time.perf_counter() - self.start
        description = self.backend.describe()
        frames, written = self.frames, self.written
        summary = {
            'video': os.path.abspath(frames.path), 'out_dir': os.path.abspath(self.out_dir),
            'overlay': os.path.abspath(self.overlay) if self.overlay else None,
            'frames': self.num_frames, 'written_frames': written,
            'resumed_at_frame': self.done if self.resume else None, 'complete': self.complete,
            'seconds': round(seconds, 3), 'frames_per_second': round(written / seconds, 2) if seconds > 0 else None,
            'stages': {name: {'seconds': round(stage_seconds, 4),
                              'frames_per_second': round(count / stage_seconds, 2) if stage_seconds > 0 else None}
                       for name, (stage_seconds, count) in self.stages.items()},
            'backend': description['backend'], 'execution_provider': description['execution_provider'],
            'device': description['device'], 'model': description['model'],
            'settings': dict(description['settings'], network_size=list(self.network_size)),
            'frame_size': list(frames.size), 'label_values': self.annotations.label_values,
            'masks': {str(frame): os.path.abspath(path) for frame, path in sorted(self.annotations.paths.items())},
            'vanish_frames': self.presence.vanish_frames, 'objects': self.presence.report(),
            'torch_version': torch.__version__,
        }
        if summary_path:
            write_json(summary_path, summary, indent=2)
        for line in self.presence.warnings():
            print_log(f'{frames.path}: {line}', logger='current', level=logging.WARNING)
        print_log(f'{frames.path}: {written} masks written in {seconds:.1f} s ({written / max(seconds, 1e-9):.1f} '
                  f'frames/s) -> {self.out_dir}', logger='current')
        return summary


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(),
                    TextColumn('{task.fields[fps]:.1f} frames/s'), TimeElapsedColumn(), disable=not enabled)
