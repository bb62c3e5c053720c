"""Decoding chosen frames of a video file with OpenCV (the data generators and benchmarks; the runtime streams
whole videos with its own checks, ``runtime.video_io.FrameSource``)."""
from typing import Iterable, List, Tuple

import cv2
import numpy as np


def video_size(path: str) -> Tuple[int, int]:
    """(H, W) of a video's frames, from its header; OSError naming the file if OpenCV cannot open it."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise OSError(f'{path}: OpenCV cannot open the video')
        return int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        capture.release()


def video_frame_count(path: str) -> int:
    """Number of frames OpenCV decodes from ``path`` (read through, not the container's claim)."""
    capture = cv2.VideoCapture(path)
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def read_video_frames(path: str, indices: Iterable[int]) -> List[np.ndarray]:
    """Frames ``indices`` of a video (each once, in increasing order) as RGB uint8, decoded in order.

    Raises OSError naming the file if OpenCV cannot open it or decoding stops before the last frame asked for.
    """
    wanted = sorted(set(indices))
    if not wanted:
        return []
    capture = cv2.VideoCapture(path)
    frames = []
    try:
        if not capture.isOpened():
            raise OSError(f'{path}: OpenCV cannot open the video')
        wanted_set = set(wanted)
        for index in range(wanted[-1] + 1):
            ok, frame = capture.read()
            if not ok:
                raise OSError(f'{path}: decoding stopped at frame {index}, frame {wanted[-1]} is needed')
            if index in wanted_set:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames
