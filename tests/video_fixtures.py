"""Write tiny fake DAVIS, JHMDB and VIP datasets, in each published layout, into a folder.

Frames are real photos (scikit-image) with textured objects cut from other real photos moving
over them at constant speed (bouncing off the borders), so that label propagation has something
to track; the annotations are exact. Every ``make_*`` returns the ground truth it wrote.
"""
import os
from typing import Dict, Tuple

import cv2
import numpy as np
import scipy.io
from PIL import Image

from sfc_plugin.utils.io import write_label_png

BACKGROUND_PHOTO = 'coffee'
OBJECT_PHOTOS = ('astronaut', 'chelsea', 'immunohistochemistry', 'rocket', 'hubble_deep_field', 'cat')


def _photo(name: str, height: int, width: int) -> np.ndarray:
    """A scikit-image photo resized to (height, width, 3) uint8 RGB."""
    from skimage import data
    image = np.asarray(getattr(data, name)())[..., :3].astype(np.uint8)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _bounce(start: float, speed: float, t: int, limit: float) -> int:
    """Position at time t of a point moving at ``speed`` in [0, limit], reflected at the ends."""
    if limit <= 0:
        return 0
    position = (start + speed * t) % (2 * limit)
    return int(round(position if position <= limit else 2 * limit - position))


def _moving_sprites(num_frames: int, height: int, width: int, num_sprites: int, seed: int,
                    size_fraction: float = 0.35):
    """Frames (T, H, W, 3) uint8 and sprite-id maps (T, H, W) uint8 (0 background, 1..N sprites).

    Each sprite is an ellipse textured by its own photo; later sprites are drawn over earlier ones.
    Also returns each sprite's top-left corner per frame, (N, T, 2) x, y, and its box size (h, w).
    """
    rng = np.random.default_rng(seed)
    background = _photo(BACKGROUND_PHOTO, height, width)
    sprite_h = max(4, int(height * size_fraction))
    sprite_w = max(4, int(width * size_fraction))
    yy, xx = np.mgrid[:sprite_h, :sprite_w]
    ellipse = ((yy - (sprite_h - 1) / 2) / (sprite_h / 2))**2 + ((xx - (sprite_w - 1) / 2) / (sprite_w / 2))**2 <= 1
    textures = [_photo(OBJECT_PHOTOS[k % len(OBJECT_PHOTOS)], sprite_h, sprite_w) for k in range(num_sprites)]
    starts = rng.uniform(0, 1, size=(num_sprites, 2)) * [width - sprite_w, height - sprite_h]
    speeds = rng.uniform(1.0, 2.5, size=(num_sprites, 2)) * rng.choice([-1, 1], size=(num_sprites, 2))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    ids = np.zeros((num_frames, height, width), np.uint8)
    corners = np.zeros((num_sprites, num_frames, 2), np.int64)
    for t in range(num_frames):
        frame = background.copy()
        for k in range(num_sprites):
            x = _bounce(starts[k, 0], speeds[k, 0], t, width - sprite_w)
            y = _bounce(starts[k, 1], speeds[k, 1], t, height - sprite_h)
            corners[k, t] = (x, y)
            region = (slice(y, y + sprite_h), slice(x, x + sprite_w))
            frame[region][ellipse] = textures[k][ellipse]
            ids[t][region][ellipse] = k + 1
        frames[t] = frame
    return frames, ids, corners, (sprite_h, sprite_w)


def _write_rgb(path: str, image: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f'could not write {path}')


def make_davis(root: str,
               videos: Dict[str, Tuple[int, int, int, int]],
               split: str = 'val',
               year: int = 2017,
               resolution: str = '480p',
               seed: int = 0) -> Dict[str, np.ndarray]:
    """Write a DAVIS-2017 layout under ``root``; return ``{video: ids (T, H, W) uint8}``.

    ``videos`` maps a name to (n_frames, H, W, n_objects). Writes
    ``JPEGImages/<resolution>/<video>/00000.jpg``, ``Annotations/<resolution>/<video>/00000.png``
    (indexed with the DAVIS palette, ids 1..n_objects) and ``ImageSets/<year>/<split>.txt``.
    """
    ground_truth = {}
    for index, (video, (num_frames, height, width, num_objects)) in enumerate(videos.items()):
        frames, ids, _, _ = _moving_sprites(num_frames, height, width, num_objects, seed + index)
        for t in range(num_frames):
            _write_rgb(os.path.join(root, 'JPEGImages', resolution, video, f'{t:05d}.jpg'), frames[t])
            write_label_png(os.path.join(root, 'Annotations', resolution, video, f'{t:05d}.png'), ids[t])
        ground_truth[video] = ids
    list_path = os.path.join(root, 'ImageSets', str(year), f'{split}.txt')
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, 'w') as file:
        file.write(''.join(f'{video}\n' for video in videos))
    return ground_truth


# Joint offsets inside the moving figure's box, as fractions of (w, h): a stick figure.
_JOINT_LAYOUT = np.array([
    (0.50, 0.20), (0.50, 0.50), (0.50, 0.08), (0.30, 0.22), (0.70, 0.22), (0.38, 0.60), (0.62, 0.60),
    (0.22, 0.38), (0.78, 0.38), (0.36, 0.78), (0.64, 0.78), (0.15, 0.52), (0.85, 0.52), (0.34, 0.95),
    (0.66, 0.95)])


def make_jhmdb(root: str,
               videos: Dict[str, Tuple[int, int, int]],
               action: str = 'walk',
               list_name: str = 'testlist_split1.txt',
               mat_first: bool = True,
               seed: int = 0) -> Dict[str, np.ndarray]:
    """Write a JHMDB layout under ``root``; return ``{video: keypoints (T, 15, 2)}`` (0-based x, y).

    ``videos`` maps a name to (n_frames, H, W). Writes ``Rename_Images/<action>/<video>/00001.png``,
    ``joint_positions/<action>/<video>/joint_positions.mat`` (``pos_img`` (2, 15, T), 1-based) and
    the list ``<list_name>`` with one ``<mat> <frame folder>`` line per video (relative paths;
    ``mat_first=False`` swaps the two). The joints ride on a moving textured figure.
    """
    ground_truth, lines = {}, []
    for index, (video, (num_frames, height, width)) in enumerate(videos.items()):
        frames, _, corners, (box_h, box_w) = _moving_sprites(num_frames, height, width, 1, seed + index,
                                                              size_fraction=0.6)
        keypoints = corners[0][:, None, :] + _JOINT_LAYOUT[None] * [box_w - 1, box_h - 1]  # (T, 15, 2)
        frame_dir = os.path.join('Rename_Images', action, video)
        mat_path = os.path.join('joint_positions', action, video, 'joint_positions.mat')
        for t in range(num_frames):
            path = os.path.join(root, frame_dir, f'{t + 1:05d}.png')
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cv2.imwrite(path, cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR))
        os.makedirs(os.path.dirname(os.path.join(root, mat_path)), exist_ok=True)
        scipy.io.savemat(os.path.join(root, mat_path), {'pos_img': keypoints.transpose(2, 1, 0) + 1})
        lines.append(f'{mat_path} {frame_dir}' if mat_first else f'{frame_dir} {mat_path}')
        ground_truth[video] = keypoints.astype(np.float64)
    with open(os.path.join(root, list_name), 'w') as file:
        file.write(''.join(f'{line}\n' for line in lines))
    return ground_truth


def make_vip(root: str,
             videos: Dict[str, Tuple[int, int, int, int]],
             annotate_every: int = 1,
             seed: int = 0) -> Dict[str, np.ndarray]:
    """Write a VIP layout under ``root``; return ``{video: category ids (T, H, W) uint8}``.

    ``videos`` maps a name to (n_frames, H, W, n_parts), n_parts <= 19: one moving figure cut into
    ``n_parts`` horizontal bands with category ids 1..n_parts. Writes
    ``VIP_Fine/Images/<video>/<000000000001>.jpg``, ``VIP_Fine/Category_ids/<video>/<...>.png``
    (grayscale ids; only every ``annotate_every``-th frame, frame 0 always) and
    ``VIP_Fine/lists/val_videos.txt``.
    """
    ground_truth = {}
    for index, (video, (num_frames, height, width, num_parts)) in enumerate(videos.items()):
        frames, figure, corners, (box_h, _) = _moving_sprites(num_frames, height, width, 1, seed + index,
                                                              size_fraction=0.6)
        rows = np.arange(height)[None, :, None] - corners[0][:, 1][:, None, None]  # (T, H, 1) row in the box
        bands = np.clip(rows * num_parts // box_h, 0, num_parts - 1) + 1
        parts = np.where(figure == 1, bands, 0).astype(np.uint8)
        for t in range(num_frames):
            stem = f'{t + 1:012d}'
            _write_rgb(os.path.join(root, 'VIP_Fine', 'Images', video, f'{stem}.jpg'), frames[t])
            if t % annotate_every == 0:
                path = os.path.join(root, 'VIP_Fine', 'Category_ids', video, f'{stem}.png')
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(parts[t]).save(path)  # grayscale ('L') ids
        ground_truth[video] = parts
    list_path = os.path.join(root, 'VIP_Fine', 'lists', 'val_videos.txt')
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, 'w') as file:
        file.write(''.join(f'{video}\n' for video in videos))
    return ground_truth
