"""A second VOS benchmark of another kind: real object cut-outs with their own alpha over real footage.

The first benchmark (``vos_benchmark.py``) cuts regions of video frames with smooth random shapes:
large, blob-like objects. This one pastes real photographed objects cut out with their own alpha
mattes (the photographic stamps of Debian's ``tuxpaint-stamps-default``: insects with thin legs
and antennae, birds, mammals, plants, tools, vehicles, ...) over other real footage (Debian
``opencv-doc``'s ``vtest.avi``, pedestrians from a fixed camera, and ``tree.avi``), seen through a
panning camera. Every video has a small object (6-12% of the frame height), objects occlude each
other in a fixed depth order, and some leave the frame and come back.

The ground truth is exact: an object covers a pixel where its warped alpha is at least 0.5, the
front-most such object owns the pixel, and the image is the alpha-composite of the same warped
layers (before the frame's JPEG compression).

Splits are disjoint in objects and in footage: a stamp belongs to the ``tune`` or the ``report``
split by a hash of its path, and each clip's frames are halved (``CLIP_SPLITS``). None of these
files is in the FC training set (``offline_data.py`` keeps ``vtest.avi`` and ``tree.avi`` out;
no stamp is used there).

Sources, unpacked without installing (``apt-get download PACKAGE && dpkg -x PACKAGE_*.deb DIR``):
stamps in ``DIR/usr/share/tuxpaint/stamps``, clips in
``DIR/usr/share/doc/opencv-doc/examples/data``. Everything a video is made of comes from
``numpy.random.default_rng([seed, split, index])`` and is recorded in ``meta.json``.
"""
import hashlib
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from sfc_plugin.utils.io import default_palette
from sfc_plugin.utils.video import read_video_frames, video_size
from .offline_data import opencv_doc_file
from .vos_benchmark import camera_view, prepare_output_folder, write_text, write_video

SPLITS = ('tune', 'report')
# The frame range of each clip in each split; ranges never overlap. OpenCV decodes only the first
# 68 of tree.avi's 444 frames (the rest stop the decoder), so its ranges are short.
CLIP_SPLITS = {
    'vtest.avi': {'tune': (0, 395), 'report': (400, 795)},
    'tree.avi': {'tune': (0, 34), 'report': (34, 68)},
}
STAMP_EXCLUDED_PARTS = ('cartoon', 'symbols')  # drawings, letters and signs, not photographs
MIN_STAMP_SIDE = 96
# object height as a share of the frame height: (low, high) per size class
SIZE_CLASSES = {'small': (0.06, 0.12), 'medium': (0.16, 0.28), 'large': (0.3, 0.5)}


# --- Sources --------------------------------------------------------------------------------------

def stamp_split(relative_path: str) -> str:
    """'tune' or 'report': a stable hash of the stamp's path inside the stamps folder."""
    digest = hashlib.sha1(relative_path.encode('utf-8')).digest()
    return SPLITS[digest[0] % 2]


def list_stamps(stamps_dir: str, split: str) -> List[str]:
    """Relative paths of the photographic stamps of one split, sorted.

    A stamp is a PNG outside the cartoon / symbol folders, at least ``MIN_STAMP_SIDE`` pixels on
    its shorter side, whose alpha covers between 10% and 90% of its box.
    """
    if not os.path.isdir(stamps_dir):
        raise FileNotFoundError(
            f'{stamps_dir}: no such folder. Unpack Debian\'s tuxpaint-stamps-default (apt-get download '
            'tuxpaint-stamps-default && dpkg -x tuxpaint-stamps-default_*.deb DIR) and pass '
            'DIR/usr/share/tuxpaint/stamps')
    stamps = []
    for root, _, files in os.walk(stamps_dir):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), stamps_dir)
            if (name.endswith('.png') and stamp_split(relative) == split
                    and not any(part in relative.split(os.sep) for part in STAMP_EXCLUDED_PARTS)):
                rgba = read_stamp(os.path.join(stamps_dir, relative))
                coverage = float((rgba[..., 3] >= 128).mean()) if rgba is not None else 0.0
                if rgba is not None and min(rgba.shape[:2]) >= MIN_STAMP_SIDE and 0.1 <= coverage <= 0.9:
                    stamps.append(relative)
    if not stamps:
        raise FileNotFoundError(f'{stamps_dir}: no photographic stamp with an alpha channel found')
    return sorted(stamps)


def read_stamp(path: str) -> Optional[np.ndarray]:
    """A stamp as RGBA uint8 (H, W, 4), or None when it has no alpha channel or cannot be read."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


# --- Planning -------------------------------------------------------------------------------------

def plan_video(seed: int, split: str, index: int, num_frames: int, height: int, width: int,
               stamps: Sequence[str], clip_sizes: Dict[str, Tuple[int, int]],
               objects_min: int, objects_max: int) -> dict:
    """Draw the background window, camera and objects of video ``index`` of ``split``."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    clips = sorted(CLIP_SPLITS)
    clip = clips[index % len(clips)]
    first, end = CLIP_SPLITS[clip][split]
    start = int(rng.integers(first, end - num_frames + 1))
    source_height, source_width = clip_sizes[clip]
    largest = min(source_width / width, source_height / height)
    pixels = largest * float(rng.uniform(0.6, 1.0))
    crop = [width * pixels, height * pixels]
    background = dict(clip=clip, frames=[start, start + num_frames], crop_size=crop,
                      crop_start=[float(rng.uniform(0, source_width - crop[0])),
                                  float(rng.uniform(0, source_height - crop[1]))],
                      crop_end=[float(rng.uniform(0, source_width - crop[0])),
                                float(rng.uniform(0, source_height - crop[1]))])
    num_objects = int(rng.integers(objects_min, objects_max + 1))
    leaving = int(rng.integers(num_objects)) if rng.uniform() < 0.5 else -1
    objects = []
    for object_id in range(1, num_objects + 1):
        size_class = 'small' if object_id == 1 else str(rng.choice(['small', 'medium', 'large'],
                                                                   p=[0.3, 0.4, 0.3]))
        objects.append(_plan_object(rng, object_id, stamps, size_class, object_id - 1 == leaving,
                                    num_frames, height, width))
    depth_order = [int(i) + 1 for i in rng.permutation(num_objects)]  # back to front
    name = f'{split}_{os.path.splitext(clip)[0]}_{index:03d}'
    return dict(name=name, split=split, size=[height, width], num_frames=num_frames,
                background=background, objects=objects, depth_order=depth_order)


def _plan_object(rng: np.random.Generator, object_id: int, stamps: Sequence[str], size_class: str,
                 leaves_frame: bool, num_frames: int, height: int, width: int) -> dict:
    """Stamp, size and motion of one object. Its centre starts inside the middle 60% of the frame
    (so frame 0 shows it); one that leaves the frame sweeps out past an edge and comes back."""
    low, high = SIZE_CLASSES[size_class]
    object_height = float(rng.uniform(low, high)) * height
    start = [float(rng.uniform(0.2, 0.8)) * width, float(rng.uniform(0.2, 0.8)) * height]
    if leaves_frame:
        # x(t) = start + A sin(pi t / T): out past the right or left edge at mid-video, back by the end
        direction = 1.0 if start[0] < width / 2 else -1.0
        edge = width if direction > 0 else 0.0
        amplitude = abs(edge - start[0]) + object_height * 1.5
        sweep = dict(amplitude=direction * amplitude, period=float(num_frames - 1))
        drift = [0.0, float(rng.uniform(-0.1, 0.1)) * height / num_frames]
    else:
        sweep = dict(amplitude=0.0, period=float(num_frames - 1))
        speed = float(rng.uniform(0.1, 0.35)) * min(height, width) / num_frames  # pixels per frame
        heading = float(rng.uniform(-math.pi, math.pi))
        drift = [speed * math.cos(heading), speed * math.sin(heading)]
    wobble = dict(amplitude=[float(v) for v in rng.uniform(0, 0.04, 2) * min(height, width)],
                  frequency=float(rng.uniform(0.1, 0.3)), phase=[float(v) for v in rng.uniform(0, 2 * math.pi, 2)])
    return dict(id=object_id, stamp=str(stamps[int(rng.integers(len(stamps)))]), size_class=size_class,
                height=object_height, flip=bool(rng.uniform() < 0.5), leaves_frame=leaves_frame,
                motion=dict(start=start, drift=drift, sweep=sweep, wobble=wobble,
                            angle=float(rng.uniform(-0.3, 0.3)),
                            angular_velocity=float(rng.uniform(-0.3, 0.3)) / num_frames,
                            log_scale_amplitude=float(rng.uniform(0.0, 0.2)),
                            scale_frequency=float(rng.uniform(0.05, 0.15))))


def object_pose(motion: dict, t: int) -> Tuple[float, float, float, float]:
    """(centre x, centre y, angle in radians, scale factor) at frame ``t``, with the wobble and
    scale oscillations and the out-and-back sweep along x."""
    sweep = motion['sweep']
    wobble = motion['wobble']
    x = (motion['start'][0] + motion['drift'][0] * t
         + sweep['amplitude'] * math.sin(math.pi * t / sweep['period'])
         + wobble['amplitude'][0] * math.sin(wobble['frequency'] * t + wobble['phase'][0]))
    y = (motion['start'][1] + motion['drift'][1] * t
         + wobble['amplitude'][1] * math.sin(wobble['frequency'] * t + wobble['phase'][1]))
    angle = motion['angle'] + motion['angular_velocity'] * t
    scale = math.exp(motion['log_scale_amplitude'] * math.sin(motion['scale_frequency'] * t))
    return x, y, angle, scale


# --- Rendering ------------------------------------------------------------------------------------

def warp_stamp(rgba: np.ndarray, obj: dict, t: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """The stamp at frame ``t`` in frame coordinates: (colours (H, W, 3) float32, alpha (H, W)
    float32 in [0, 1]), alpha zero outside the object."""
    x, y, angle, scale = object_pose(obj['motion'], t)
    stamp_height, stamp_width = rgba.shape[:2]
    zoom = obj['height'] * scale / stamp_height  # frame pixels per stamp pixel
    if zoom < 1:  # shrink with area averaging first, as a camera would integrate
        rgba = cv2.resize(rgba, (max(1, round(stamp_width * zoom)), max(1, round(stamp_height * zoom))),
                          interpolation=cv2.INTER_AREA)
        zoom_x, zoom_y = rgba.shape[1] / stamp_width, rgba.shape[0] / stamp_height
        residual = (zoom / zoom_x, zoom / zoom_y)
    else:
        residual = (zoom, zoom)
    source_height, source_width = rgba.shape[:2]
    premultiplied = rgba.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:] / 255
    cos, sin = math.cos(angle), math.sin(angle)
    flip = -1.0 if obj['flip'] else 1.0
    # frame = centre + R(angle) @ diag(flip * sx, sy) @ (source - source centre)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([flip * residual[0], residual[1]])
    offset = np.array([x, y]) - linear @ np.array([(source_width - 1) / 2, (source_height - 1) / 2])
    affine = np.hstack([linear, offset[:, None]]).astype(np.float32)
    warped = cv2.warpAffine(premultiplied, affine, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = warped[..., 3] / 255
    colours = warped[..., :3] / np.maximum(alpha[..., None], 1e-6)
    return colours, alpha


def render_video(plan: dict, stamps_dir: str, opencv_data_dir: str) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Frames (H, W, 3) uint8 RGB and label maps (H, W) uint8 of a planned video."""
    height, width = plan['size']
    background = plan['background']
    start, stop = background['frames']
    sources = read_video_frames(opencv_doc_file(opencv_data_dir, background['clip']), range(start, stop))
    by_id = {obj['id']: obj for obj in plan['objects']}
    stamps = {}
    for obj in plan['objects']:
        rgba = read_stamp(os.path.join(stamps_dir, obj['stamp']))
        if rgba is None:
            raise ValueError(f'{os.path.join(stamps_dir, obj["stamp"])}: not an RGBA PNG')
        stamps[obj['id']] = rgba
    frames, label_maps = [], []
    for t in range(plan['num_frames']):
        image = camera_view(sources[t], background, t, plan['num_frames'], height, width).astype(np.float32)
        labels = np.zeros((height, width), np.uint8)
        for object_id in plan['depth_order']:  # back to front
            colours, alpha = warp_stamp(stamps[object_id], by_id[object_id], t, height, width)
            image = image * (1 - alpha[..., None]) + colours * alpha[..., None]
            labels[alpha >= 0.5] = object_id
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
        label_maps.append(labels)
    return frames, label_maps


def first_frame_ok(label_map: np.ndarray, num_objects: int, min_pixels: int = 16) -> bool:
    """Every object shows at least ``min_pixels`` pixels in frame 0 (its annotation then holds it)."""
    counts = np.bincount(label_map.ravel(), minlength=num_objects + 1)
    return bool((counts[1:num_objects + 1] >= min_pixels).all())


# --- Writing --------------------------------------------------------------------------------------

def make_cutout_benchmark(out_dir: str, stamps_dir: str, opencv_data_dir: str, split: str = 'report',
                          num_videos: int = 6, num_frames: int = 30, height: int = 240, width: int = 432,
                          seed: int = 0, objects_min: int = 2, objects_max: int = 4,
                          overwrite: bool = False) -> dict:
    """Write the cut-out benchmark into ``out_dir`` in the DAVIS-2017 layout; return ``meta.json``.

    The same files as ``make_vos_benchmark`` (``JPEGImages/480p``, ``Annotations/480p``,
    ``ImageSets/2017/val.txt``, ``meta.json``), each written atomically. A video whose frame 0
    does not show every object is redrawn (up to 20 times).
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    if num_videos < 1 or num_frames < 2:
        raise ValueError(f'need at least 1 video of at least 2 frames, got {num_videos} of {num_frames}')
    if height < 32 or width < 32:
        raise ValueError(f'frames must be at least 32x32 pixels, got {width}x{height} (WxH)')
    if not 1 <= objects_min <= objects_max <= 20:
        raise ValueError(f'need 1 <= objects_min <= objects_max <= 20, got {objects_min}, {objects_max}')
    shortest = min(end - first for ranges in CLIP_SPLITS.values() for first, end in [ranges[split]])
    if num_frames > shortest:
        raise ValueError(f'{num_frames} frames: the {split} footage allows at most {shortest}')
    stamps = list_stamps(stamps_dir, split)
    clip_sizes = {clip: video_size(opencv_doc_file(opencv_data_dir, clip)) for clip in CLIP_SPLITS}
    outputs = prepare_output_folder(out_dir, overwrite)

    palette = default_palette()
    videos = []
    for index in range(num_videos):
        for attempt in range(20):
            plan = plan_video(seed + 1000 * attempt, split, index, num_frames, height, width, stamps,
                              clip_sizes, objects_min, objects_max)
            frames, label_maps = render_video(plan, stamps_dir, opencv_data_dir)
            if first_frame_ok(label_maps[0], len(plan['objects'])):
                break
        else:
            raise RuntimeError(f'video {index}: no draw showed every object in frame 0; use larger frames')
        plan['attempt'] = attempt
        write_video(outputs, plan['name'], frames, label_maps, palette)
        videos.append(plan)
        print_log(f'cut-out benchmark: wrote {plan["name"]} ({num_frames} frames, {len(plan["objects"])} '
                  f'objects: {", ".join(obj["stamp"] for obj in plan["objects"])}) to {out_dir}',
                  logger='current')

    write_text(outputs[2], ''.join(f'{plan["name"]}\n' for plan in videos))
    meta = dict(generator=__name__, split=split, seed=seed,
                num_videos=num_videos, num_frames=num_frames, size=[height, width],
                objects_min=objects_min, objects_max=objects_max,
                sources=dict(stamps='tuxpaint-stamps-default photographic stamps (RGBA), '
                                    f'{len(stamps)} in the {split} split',
                             footage={clip: ranges[split] for clip, ranges in CLIP_SPLITS.items()}),
                videos=videos)
    write_text(outputs[3], json.dumps(meta, indent=1, sort_keys=True) + '\n')
    return meta
