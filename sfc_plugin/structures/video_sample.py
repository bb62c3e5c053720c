"""The video sample: the contract between the evaluation datasets, the propagation model and the metrics.

One sample is one video. Frames are not loaded: a sample holds paths, and the propagation model
streams the frames itself. Every sample is a dict::

    video: str                       # video name
    frame_paths: list[str]           # all frames, in order
    anno_paths: list[str | None]     # per-frame ground-truth PNG (None: frame not annotated); [] for JHMDB
    first_anno_path: str | None      # frame 0's annotation (DAVIS: indexed PNG of object ids;
                                     # VIP: PNG of category ids); None for JHMDB
    keypoints: np.ndarray | None     # JHMDB: (T, 15, 2) float x, y in original pixels, 0-based
    ori_shape: (H, W)                # native frame size (of frame 0)
    input_size: (H, W) | None        # frames are resized to this before the network; None: native
    task: 'vos' | 'pose' | 'parts'
"""
import os
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from sfc_plugin.utils import ImageReadError, read_label_png

VOID_ID = 255  # DAVIS "void" label (object borders, ignored regions)
# JHMDB's 15 joints, in the order of ``pos_img``.
JHMDB_JOINTS = ('neck', 'belly', 'face', 'right_shoulder', 'left_shoulder', 'right_hip', 'left_hip',
                'right_elbow', 'left_elbow', 'right_knee', 'left_knee', 'right_wrist', 'left_wrist',
                'right_ankle', 'left_ankle')
# VIP's 20 part categories (Category_ids values 0..19).
VIP_CLASSES = ('background', 'hat', 'hair', 'sun-glasses', 'upper-clothes', 'dress', 'coat', 'socks',
               'pants', 'gloves', 'scarf', 'skirt', 'torso-skin', 'face', 'right-arm', 'left-arm',
               'right-leg', 'left-leg', 'right-shoe', 'left-shoe')


class VideoDataError(ValueError):
    """A video sample's files are missing, unreadable or inconsistent; the message names the file."""


def image_size(path: str) -> Tuple[int, int]:
    """(H, W) of an image file, from its header; VideoDataError naming the file if it is not an image."""
    return _image_header(path)[0]


def _image_header(path: str) -> Tuple[Tuple[int, int], str]:
    """((H, W), PIL mode) of an image file, reading its header only."""
    if not os.path.isfile(path):
        raise VideoDataError(f'{path}: no such file')
    try:
        with Image.open(path) as image:
            return (image.height, image.width), image.mode
    except OSError as error:
        raise VideoDataError(f'{path}: not a readable image (corrupt?): {error}') from error


def validate_video_sample(sample: dict) -> None:
    """Check one video sample before it is propagated; raise VideoDataError naming the file.

    Checks that every frame and annotation is a readable image of the frame 0 size
    (``ori_shape``; DAVIS annotations must be indexed PNGs), that frame 0's annotation holds at
    least one object or part (an id other than 0 and 255; VIP: ids below 20) and, for pose, that
    the keypoints are (T', 15, 2) finite numbers for T' <= T frames. Reads image headers only,
    plus frame 0's annotation.
    """
    video, task = sample['video'], sample['task']
    frame_paths = sample['frame_paths']
    if not frame_paths:
        raise VideoDataError(f'video {video!r}: no frames')
    ori_shape = tuple(sample['ori_shape'])
    for path in frame_paths:
        size = image_size(path)
        if size != ori_shape:
            raise VideoDataError(f'{path}: frame is {size[1]}x{size[0]} (WxH), but frame 0 '
                                 f'{frame_paths[0]} is {ori_shape[1]}x{ori_shape[0]}')
    for path in sample['anno_paths']:
        if path is None:
            continue
        size, mode = _image_header(path)
        if size != ori_shape:
            raise VideoDataError(f'{path}: annotation is {size[1]}x{size[0]} (WxH), but the frames of '
                                 f'video {video!r} are {ori_shape[1]}x{ori_shape[0]}')
        if task == 'vos' and mode != 'P':
            raise VideoDataError(f'{path}: expected an indexed (palette) PNG of object ids, got mode {mode!r}'
                                 + (' (an RGB colour mask?)' if mode in ('RGB', 'RGBA') else ''))
    if task == 'pose':
        _check_keypoints(sample['keypoints'], len(frame_paths), video)
        return
    first_anno_path = sample['first_anno_path']
    if first_anno_path is None:
        raise VideoDataError(f'video {video!r}: no annotation for frame 0 ({frame_paths[0]})')
    try:
        ids, _ = read_label_png(first_anno_path, require_indexed=(task == 'vos'))
    except ImageReadError as error:
        raise VideoDataError(str(error)) from error
    labels = set(np.unique(ids).tolist()) - {0, VOID_ID}
    if not labels:
        raise VideoDataError(f'{first_anno_path}: frame 0 annotation of video {video!r} is empty '
                             '(only background/void): there is nothing to propagate')
    if task == 'parts' and max(labels) >= len(VIP_CLASSES):
        raise VideoDataError(f'{first_anno_path}: category id {max(labels)} outside 0..{len(VIP_CLASSES) - 1} '
                             '(is this a Category_ids PNG?)')


def _check_keypoints(keypoints: Optional[np.ndarray], num_frames: int, video: str) -> None:
    if keypoints is None:
        raise VideoDataError(f'video {video!r}: pose sample without keypoints')
    if keypoints.ndim != 3 or keypoints.shape[1:] != (len(JHMDB_JOINTS), 2):
        raise VideoDataError(
            f'video {video!r}: keypoints must be (T, {len(JHMDB_JOINTS)}, 2), got {keypoints.shape}')
    if len(keypoints) > num_frames:
        raise VideoDataError(f'video {video!r}: keypoints for {len(keypoints)} frames but only '
                             f'{num_frames} frames')
    if not np.isfinite(keypoints).all():
        raise VideoDataError(f'video {video!r}: keypoints hold NaN or infinite values')
