"""Frames in, masks and an overlay video out: OpenCV video files and frame folders, a decoding thread and a
writing thread with small bounded queues, so that decoding and writing overlap the network's work.

Every output file is written atomically (a temporary file renamed when complete), so a crash or Ctrl-C
leaves each mask either complete or absent, and no partial overlay video.
"""
import os
import queue
import re
import tempfile
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from sfc_plugin.utils import IMAGE_EXTENSIONS, read_image

# Codecs of the overlay video per container (those OpenCV's FFmpeg build writes without extra libraries).
OVERLAY_FOURCC = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v', '.mkv': 'mp4v', '.avi': 'MJPG', '.webm': 'VP90'}
QUEUE_DEPTH = 4  # frames decoded ahead / waiting to be written


class VideoReadError(OSError):
    """A video or frame folder is missing, unreadable, truncated or empty."""


class OutputError(OSError):
    """An output file or folder cannot be written."""


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


class FrameSource:
    """The frames of a video file (decoded with OpenCV) or of a folder of images, as RGB uint8 (H, W, 3).

    Attributes:
        path: the video file or folder.
        size: (H, W) of the frames.
        fps: frame rate (the file's, or 25 for a folder).
        declared_frames: frames the container declares (exact for a folder; None when unknown).
    Iterating decodes the frames in order; it raises VideoReadError naming the file if the video decodes
    to no frame or to fewer frames than it declares (truncated or corrupt), after the frames it could decode.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: Optional[List[str]] = None
        if os.path.isdir(path):
            names = sorted((name for name in os.listdir(path) if name.lower().endswith(IMAGE_EXTENSIONS)),
                           key=_natural_key)
            if not names:
                raise VideoReadError(f'{path}: no frames (a frame folder needs {"/".join(IMAGE_EXTENSIONS)} files)')
            self.files = [os.path.join(path, name) for name in names]
            self.size = read_image(self.files[0]).shape[:2]
            self.fps = 25.0
            self.declared_frames = len(self.files)
            return
        if not os.path.isfile(path):
            raise VideoReadError(f'{path}: no such video file or frame folder')
        capture = cv2.VideoCapture(path)
        try:
            if not capture.isOpened():
                raise VideoReadError(f'{path}: cannot open it as a video (truncated, corrupt, or not a video '
                                     'OpenCV can decode)')
            self.size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps if fps and 0 < fps < 1000 else 25.0
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            self.declared_frames = count if count > 0 else None
        finally:
            capture.release()

    def frame_name(self, index: int) -> str:
        """Stem of frame ``index``'s mask: the frame file's stem, or the zero-padded index (DAVIS layout)."""
        if self.files is not None:
            return os.path.splitext(os.path.basename(self.files[index]))[0]
        return f'{index:05d}'

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for path in self.files:
                image = read_image(path)
                if image.shape[:2] != tuple(self.size):
                    raise VideoReadError(f'{path}: frame of {image.shape[1]}x{image.shape[0]} pixels in a folder of '
                                         f'{self.size[1]}x{self.size[0]} frames')
                yield image
            return
        capture = cv2.VideoCapture(self.path)
        decoded = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if frame.shape[:2] != tuple(self.size):
                    raise VideoReadError(f'{self.path}: frame {decoded} is {frame.shape[1]}x{frame.shape[0]} pixels, '
                                         f'the video {self.size[1]}x{self.size[0]}')
                decoded += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
        if decoded == 0:
            raise VideoReadError(f'{self.path}: no frame could be decoded (an empty or corrupt video)')
        if self.declared_frames is not None and decoded < self.declared_frames:
            raise VideoReadError(f'{self.path}: decoded only {decoded} of the {self.declared_frames} frames the file '
                                 'declares (truncated or corrupt)')


class PrefetchReader:
    """Decode frames (and prepare each one with ``prepare(index, rgb)``) in a background thread, at most
    ``depth`` frames ahead. Iterating yields ``(index, rgb, prepared)``; an error of the source or of
    ``prepare`` is raised in the consumer, after the frames before it.

    Attributes:
        seconds: time the thread spent decoding and preparing.
    """

    def __init__(self, frames: FrameSource, prepare: Callable[[int, np.ndarray], Any],
                 depth: int = QUEUE_DEPTH) -> None:
        self.seconds = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(frames, prepare), name='sfc-frame-reader',
                                        daemon=True)
        self._thread.start()

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, frames: FrameSource, prepare: Callable[[int, np.ndarray], Any]) -> None:
        try:
            start = time.perf_counter()
            for index, rgb in enumerate(frames):
                prepared = prepare(index, rgb)
                self.seconds += time.perf_counter() - start
                if not self._put(('frame', index, rgb, prepared)):
                    return
                start = time.perf_counter()
            self._put(('end',))
        except BaseException as error:  # handed to the consumer
            self._put(('error', error))

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray, Any]]:
        while True:
            item = self._queue.get()
            if item[0] == 'end':
                return
            if item[0] == 'error':
                raise item[1]
            yield item[1:]

    def close(self) -> None:
        """Stop the thread (frames not yet consumed are dropped)."""
        self._stop.set()
        self._thread.join()


class BackgroundWriter:
    """Run ``write(item)`` for each item in a background thread, in order, at most ``depth`` items queued.

    An error in ``write`` stops the writing; it is raised by the next :meth:`put` or by :meth:`close`.

    Attributes:
        seconds: time spent in ``write``.
    """

    def __init__(self, write: Callable[[Any], None], depth: int = QUEUE_DEPTH) -> None:
        self.seconds = 0.0
        self.error: Optional[BaseException] = None
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name='sfc-mask-writer', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain after a failure
            try:
                start = time.perf_counter()
                self._write(item)
                self.seconds += time.perf_counter() - start
            except BaseException as error:
                self.error = error

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(item)

    def close(self, raise_error: bool = True) -> None:
        """Write what is queued, stop the thread, and raise the writing error if there was one."""
        self._queue.put(None)
        self._thread.join()
        if raise_error and self.error is not None:
            raise self.error


def overlay_frame(rgb: np.ndarray, ids: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame with the objects (ids != 0) blended in their palette colours and their outlines drawn."""
    colours = palette[ids]  # (H, W, 3)
    blended = rgb.copy()
    objects = ids != 0
    blended[objects] = (rgb[objects] * (1 - alpha) + colours[objects] * alpha).round().astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    outline = (cv2.dilate(ids, kernel) != cv2.erode(ids, kernel)) & objects
    blended[outline] = colours[outline]
    return blended


class OverlayVideo:
    """An overlay video written to a temporary file beside ``path`` and moved onto it by :meth:`commit`.

    Use as a context manager: leaving it without :meth:`commit` (an error, Ctrl-C) deletes the temporary file,
    so ``path`` is either a complete video or untouched.
    """

    def __init__(self, path: str, fps: float, frame_size: Tuple[int, int]) -> None:
        stem, extension = os.path.splitext(os.path.basename(path))
        if extension.lower() not in OVERLAY_FOURCC:
            raise OutputError(f'{path}: the overlay video must be one of {", ".join(sorted(OVERLAY_FOURCC))}')
        self.path = path
        self._committed = False
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{extension}',
                                             dir=os.path.dirname(os.path.abspath(path)))
            os.close(fd)
        except OSError as error:
            raise OutputError(f'{path}: cannot write the overlay video there ({error.strerror or error})') from error
        self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*OVERLAY_FOURCC[extension.lower()]), fps,
                                       (frame_size[1], frame_size[0]))
        if not self._writer.isOpened():
            self.__exit__(None, None, None)
            raise OutputError(f'{path}: OpenCV cannot write a {extension} video here')

    def write(self, rgb: np.ndarray, ids: np.ndarray, palette: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(overlay_frame(rgb, ids, palette), cv2.COLOR_RGB2BGR))

    def commit(self) -> None:
        """Keep the video: it replaces ``path`` when the context exits without an error."""
        self._committed = True

    def __enter__(self) -> 'OverlayVideo':
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._writer.release()
        if self._committed and exc_type is None:
            os.chmod(self._tmp, 0o644)  # mkstemp creates 0600 files
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)
