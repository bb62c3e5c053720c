"""The ``turning`` VOS benchmark: textured 3D objects over real footage, rendered with exact masks.

What the other two kinds lack: objects that rotate out of plane, so that faces the first frame never showed
appear (cubes, cones); thin parts that turn end-on (rods a few pixels wide, rings); and objects that pass
behind another one, are hidden for several frames and come back (every second video). Each object is a
triangle mesh with a texture cut from a frame of the held-out footage of the ``shapes`` kind, flat Lambert
shading per triangle (a face turning away from the light darkens), perspective projection and a z-buffer;
the z-buffer's object ids are the masks, exact to the pixel. Backgrounds: a panning crop of a held-out shot
(:mod:`.vos_benchmark`'s sources and camera). Every random choice comes from ``default_rng([seed, index,
attempt])`` and is stored in ``meta.json``.
"""
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from sfc_plugin.utils.io import default_palette
from .vos_benchmark import (BENCHMARK_SHOTS, camera_view, plan_camera, prepare_output_folder, read_clip_frames,
                            shots_for, write_text, write_video)

KINDS = ('cube', 'cone', 'rod', 'ring')
TEXTURE_SIDE = 192  # pixels of an object's texture (a 3 x 2 grid of cube faces)
FOCAL = 1.2  # focal length in frame widths
LIGHT = np.array([-0.3, -0.5, -1.0]) / np.linalg.norm([-0.3, -0.5, -1.0])  # towards the camera, from the top left
MIN_PIXELS = 16  # of every object in frame 0, and of a returning object in the last frame
MIN_HIDDEN_FRAMES = 3  # of the returning object in an occlusion video


# --- Meshes: vertices (V, 3), triangles (F, 3), texture coordinates per triangle corner (F, 3, 2) ---------------

def _grid_mesh(points: np.ndarray, uv: np.ndarray, wrap_u: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two triangles per cell of an (n_u, n_v) grid of points (n_u, n_v, 3) with coordinates (n_u, n_v, 2)."""
    n_u, n_v = points.shape[:2]
    faces, coords = [], []
    for i in range(n_u if wrap_u else n_u - 1):
        j_next = (i + 1) % n_u
        for j in range(n_v - 1):
            corners = [(i, j), (j_next, j), (j_next, j + 1), (i, j + 1)]
            index = [a * n_v + b for a, b in corners]
            cell_uv = [uv[a, b] for a, b in corners]
            if wrap_u and j_next == 0:  # the seam: continue u past 1 rather than back to 0
                cell_uv[1] = cell_uv[1] + [1.0, 0.0]
                cell_uv[2] = cell_uv[2] + [1.0, 0.0]
            faces += [[index[0], index[1], index[2]], [index[0], index[2], index[3]]]
            coords += [[cell_uv[0], cell_uv[1], cell_uv[2]], [cell_uv[0], cell_uv[2], cell_uv[3]]]
    return points.reshape(-1, 3), np.array(faces), np.array(coords, dtype=np.float64)


def _revolved(profile: np.ndarray, segments: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A surface of revolution about the z axis of ``profile`` (n, 2) (radius, z) points."""
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    points = np.stack([np.outer(np.cos(angles), profile[:, 0]), np.outer(np.sin(angles), profile[:, 0]),
                       np.broadcast_to(profile[:, 1], (segments, len(profile)))], -1)
    uv = np.stack(np.meshgrid(np.arange(segments) / segments, np.linspace(0, 1, len(profile)), indexing='ij'), -1)
    return _grid_mesh(points, uv, wrap_u=True)


def make_mesh(kind: str, size: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mesh of an object of ``kind`` centred on the origin; ``size``: cube (half side,), cone (radius,
    height), rod (radius, length), ring (major radius, tube radius)."""
    if kind == 'cube':
        half = size[0]
        vertices, faces, coords = [], [], []
        # (normal axis, sign): six faces, each a cell of the texture's 3 x 2 grid
        for index, (axis, sign) in enumerate([(a, s) for a in range(3) for s in (1, -1)]):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            corners = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                point = np.zeros(3)
                point[axis], point[u_axis], point[v_axis] = sign * half, du * half, dv * half
                corners.append(point)
            base = len(vertices)
            vertices += corners
            cell = np.array([index % 3, index // 3]) / [3, 2]
            uv = [cell + np.array([(du + 1) / 6, (dv + 1) / 4]) for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
            coords += [[uv[0], uv[1], uv[2]], [uv[0], uv[2], uv[3]]]
        return np.array(vertices), np.array(faces), np.array(coords)
    if kind == 'cone':  # apex up, base disc closed
        radius, height = size
        profile = np.array([[0.0, -height / 3], [radius, -height / 3], [radius * 0.5, height / 3],
                            [0.0, 2 * height / 3]])
        return _revolved(profile, 32)
    if kind == 'rod':  # a closed cylinder along z
        radius, length = size
        profile = np.array([[0.0, -length / 2], [radius, -length / 2], [radius, length / 2], [0.0, length / 2]])
        return _revolved(profile, 12)
    if kind == 'ring':  # a torus about the z axis
        major, tube = size
        minor = np.linspace(0, 2 * np.pi, 9)
        profile = np.stack([major + tube * np.cos(minor), tube * np.sin(minor)], 1)
        return _revolved(profile, 40)
    raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')


def rotation(axis: Sequence[float], angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about the unit vector ``axis`` (Rodrigues)."""
    x, y, z = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


# --- Rendering ----------------------------------------------------------------------------------------------------

def object_vertices(obj: dict, t: int) -> np.ndarray:
    """Camera-space vertices (V, 3) of an object at frame ``t`` (x right, y down, z away from the camera)."""
    vertices, _, _ = make_mesh(obj['kind'], obj['size'])
    motion = obj['motion']
    turn = rotation(motion['axis'], math.radians(motion['start_angle'] + t * motion['degrees_per_frame']))
    tilt = rotation(motion['tilt_axis'], math.radians(motion['tilt']))
    centre = np.asarray(motion['centre']) + t * np.asarray(motion['velocity'])
    return vertices @ (turn @ tilt).T + centre


def draw_object(obj: dict, texture: np.ndarray, t: int, image: np.ndarray, ids: np.ndarray,
                depth: np.ndarray) -> None:
    """Rasterise one object into ``image`` (H, W, 3) float, ``ids`` (H, W) and ``depth`` (H, W), in place:
    perspective projection, perspective-correct texture coordinates, flat Lambert shading, z-buffer."""
    height, width = ids.shape
    _, faces, coords = make_mesh(obj['kind'], obj['size'])
    vertices = object_vertices(obj, t)
    focal = FOCAL * width
    points = np.stack([focal * vertices[:, 0] / vertices[:, 2] + width / 2,
                       focal * vertices[:, 1] / vertices[:, 2] + height / 2], 1)
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    lengths = np.linalg.norm(normals, axis=1)
    shades = 0.3 + 0.7 * np.abs(normals @ LIGHT) / np.maximum(lengths, 1e-12)
    tex_h, tex_w = texture.shape[:2]
    for face, uv, shade in zip(faces, coords, shades):
        p, z = points[face], vertices[face, 2]
        area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (p[2, 0] - p[0, 0])
        if abs(area) < 1e-9:
            continue
        x0, x1 = max(int(math.floor(p[:, 0].min())), 0), min(int(math.ceil(p[:, 0].max())), width)
        y0, y1 = max(int(math.floor(p[:, 1].min())), 0), min(int(math.ceil(p[:, 1].max())), height)
        if x0 >= x1 or y0 >= y1:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
        w0 = ((p[1, 0] - xs) * (p[2, 1] - ys) - (p[1, 1] - ys) * (p[2, 0] - xs)) / area
        w1 = ((p[2, 0] - xs) * (p[0, 1] - ys) - (p[2, 1] - ys) * (p[0, 0] - xs)) / area
        w2 = 1 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        if not inside.any():
            continue
        inverse_z = w0 / z[0] + w1 / z[1] + w2 / z[2]
        pixel_z = 1 / np.where(inside, inverse_z, 1.0)
        region = (slice(y0, y1), slice(x0, x1))
        nearer = inside & (pixel_z < depth[region])
        if not nearer.any():
            continue
        u = (w0 * uv[0, 0] / z[0] + w1 * uv[1, 0] / z[1] + w2 * uv[2, 0] / z[2]) * pixel_z
        v = (w0 * uv[0, 1] / z[0] + w1 * uv[1, 1] / z[1] + w2 * uv[2, 1] / z[2]) * pixel_z
        colours = texture[np.clip((v[nearer] * tex_h).astype(int), 0, tex_h - 1),
                          np.clip(((u[nearer] % 1.0) * tex_w).astype(int), 0, tex_w - 1)]
        image[region][nearer] = colours * shade
        ids[region][nearer] = obj['id']
        depth[region][nearer] = pixel_z[nearer]


def render_frame(objects: Sequence[dict], textures: Dict[int, np.ndarray], background: np.ndarray,
                 t: int) -> Tuple[np.ndarray, np.ndarray]:
    """Frame ``t``: (H, W, 3) uint8 RGB and (H, W) uint8 object ids (0 background)."""
    height, width = background.shape[:2]
    image = background.astype(np.float64)
    ids = np.zeros((height, width), np.uint8)
    depth = np.full((height, width), np.inf)
    for obj in objects:
        draw_object(obj, textures[obj['id']], t, image, ids, depth)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), ids


# --- Planning -----------------------------------------------------------------------------------------------------

def _unit(rng: np.random.Generator) -> List[float]:
    vector = rng.normal(size=3)
    return (vector / np.linalg.norm(vector)).tolist()


def _plan_object(rng: np.random.Generator, object_id: int, kind: str, centre: Sequence[float],
                 velocity: Sequence[float], texture_shots: Sequence[tuple], scale: float = 1.0) -> dict:
    clip, shot_start, shot_end = texture_shots[int(rng.integers(len(texture_shots)))]
    if kind == 'cube':
        size = [scale * float(rng.uniform(0.55, 0.8))]
    elif kind == 'cone':
        size = [scale * float(rng.uniform(0.55, 0.8)), scale * float(rng.uniform(1.4, 1.9))]
    elif kind == 'rod':
        size = [float(rng.uniform(0.035, 0.06)), float(rng.uniform(2.0, 2.8))]
    else:
        size = [float(rng.uniform(0.7, 1.0)), float(rng.uniform(0.045, 0.07))]
    return dict(id=object_id, kind=kind, size=size,
                texture=dict(clip=clip, frame=int(rng.integers(shot_start, shot_end)),
                             box_fraction=[float(rng.uniform(0, 0.4)), float(rng.uniform(0, 0.4)),
                                           float(rng.uniform(0.4, 0.6))]),
                motion=dict(axis=_unit(rng), degrees_per_frame=float(rng.uniform(4, 9) * rng.choice([-1, 1])),
                            start_angle=float(rng.uniform(0, 360)), tilt_axis=_unit(rng),
                            tilt=float(rng.uniform(0, 360)), centre=[float(v) for v in centre],
                            velocity=[float(v) for v in velocity]))


def plan_video(seed: int, index: int, attempt: int, num_frames: int, height: int, width: int) -> dict:
    """Background, objects and motion of video ``index``. Even videos: three objects (a turning solid, a rod and
    a ring) moving freely; odd videos: a turning solid in front and a second object passing behind it (hidden
    for a while, then back)."""
    shots = shots_for(num_frames)
    clip, shot_start, shot_end = shots[int(np.random.default_rng([seed, 2**31]).permutation(len(shots))[
        index % len(shots)])]
    rng = np.random.default_rng([seed, index, attempt])
    start = int(rng.integers(shot_start, shot_end - num_frames + 1))
    background = dict(clip=clip, shot=[shot_start, shot_end], frames=[start, start + num_frames],
                      **plan_camera(rng, clip, height, width))
    texture_shots = [shot for shot in BENCHMARK_SHOTS if shot != (clip, shot_start, shot_end)]
    half_x, half_y = width / (2 * FOCAL * width), height / (2 * FOCAL * width)  # frame half-extent per unit depth
    solid = str(rng.choice(['cube', 'cone']))
    if index % 2 == 0:
        objects = []
        for object_id, kind in enumerate([solid, 'rod', 'ring'], 1):
            z = float(rng.uniform(6.5, 8.5))
            centre = [float(rng.uniform(-0.6, 0.6)) * half_x * z, float(rng.uniform(-0.5, 0.5)) * half_y * z, z]
            speed = 0.6 * half_x * z / num_frames  # crosses at most ~30 % of the frame
            velocity = [float(rng.uniform(-speed, speed)), float(rng.uniform(-speed, speed)) * 0.5, 0.0]
            objects.append(_plan_object(rng, object_id, kind, centre, velocity, texture_shots))
        kind = 'free'
    else:
        z_front, z_back = float(rng.uniform(5.5, 6.5)), float(rng.uniform(8.5, 9.5))
        front_x = float(rng.uniform(-0.15, 0.15)) * half_x * z_front
        front = _plan_object(rng, 1, solid, [front_x, 0.0, z_front], [0.0, 0.0, 0.0], texture_shots, scale=1.5)
        passing = str(rng.choice(['cube', 'cone', 'ring']))
        direction = float(rng.choice([-1, 1]))
        x_from = -direction * 0.75 * half_x * z_back
        x_to = direction * 0.75 * half_x * z_back
        behind = _plan_object(rng, 2, passing, [x_from, float(rng.uniform(-0.15, 0.15)) * half_y * z_back, z_back],
                              [(x_to - x_from) / (num_frames - 1), 0.0, 0.0], texture_shots)
        objects = [front, behind]
        kind = 'occlusion'
    name = f'turning_{os.path.splitext(clip)[0]}_{index:03d}'
    return dict(name=name, kind=kind, size=[height, width], num_frames=num_frames, attempt=attempt,
                background=background, objects=objects)


def _texture(frame: np.ndarray, texture: dict) -> np.ndarray:
    left, top, side = texture['box_fraction']
    height, width = frame.shape[:2]
    pixels = side * min(height, width)
    x, y = left * (width - pixels), top * (height - pixels)
    crop = frame[int(y):int(y + pixels), int(x):int(x + pixels)]
    return cv2.resize(crop, (TEXTURE_SIDE, TEXTURE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float64)


def render_video(plan: dict, textures: Optional[Dict[int, np.ndarray]] = None
                 ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Frames (H, W, 3) uint8 RGB and label maps (H, W) uint8 of a planned video; ``textures`` (object id ->
    (TEXTURE_SIDE, TEXTURE_SIDE, 3) RGB) replace the planned textures of those objects."""
    height, width = plan['size']
    start, stop = plan['background']['frames']
    needed: Dict[str, set] = {plan['background']['clip']: set(range(start, stop))}
    for obj in plan['objects']:
        needed.setdefault(obj['texture']['clip'], set()).add(obj['texture']['frame'])
    decoded = {clip: read_clip_frames(clip, indices) for clip, indices in needed.items()}
    textures = {obj['id']: _texture(decoded[obj['texture']['clip']][obj['texture']['frame']], obj['texture'])
                for obj in plan['objects']} | {k: np.asarray(v, np.float64) for k, v in (textures or {}).items()}
    frames, label_maps = [], []
    for t in range(plan['num_frames']):
        background = camera_view(decoded[plan['background']['clip']][start + t], plan['background'], t,
                                 plan['num_frames'], height, width)
        image, ids = render_frame(plan['objects'], textures, background, t)
        frames.append(image)
        label_maps.append(ids)
    return frames, label_maps


def video_ok(plan: dict, label_maps: Sequence[np.ndarray]) -> bool:
    """Every object shows at least ``MIN_PIXELS`` in frame 0; in an occlusion video the passing object is
    hidden for at least ``MIN_HIDDEN_FRAMES`` frames and shows ``MIN_PIXELS`` again in the last frame."""
    counts = np.array([np.bincount(ids.ravel(), minlength=len(plan['objects']) + 1) for ids in label_maps])
    if (counts[0, 1:len(plan['objects']) + 1] < MIN_PIXELS).any():
        return False
    if plan['kind'] == 'occlusion':
        return int((counts[:, 2] == 0).sum()) >= MIN_HIDDEN_FRAMES and counts[-1, 2] >= MIN_PIXELS
    return True


# --- Writing ------------------------------------------------------------------------------------------------------

def make_turning_benchmark(out_dir: str, num_videos: int = 6, num_frames: int = 30, height: int = 240,
                           width: int = 432, seed: int = 0, overwrite: bool = False) -> dict:
    """Write the turning benchmark into ``out_dir`` in the DAVIS-2017 layout (the files of
    ``make_vos_benchmark``, each written atomically); return ``meta.json``. A draw that fails :func:`video_ok`
    is redrawn (up to 30 times)."""
    if num_videos < 1 or num_frames < 2:
        raise ValueError(f'need at least 1 video of at least 2 frames, got {num_videos} of {num_frames}')
    if height < 32 or width < 32:
        raise ValueError(f'frames must be at least 32x32 pixels, got {width}x{height} (WxH)')
    shots_for(num_frames)
    outputs = prepare_output_folder(out_dir, overwrite)
    palette = default_palette()
    videos = []
    for index in range(num_videos):
        for attempt in range(30):
            plan = plan_video(seed, index, attempt, num_frames, height, width)
            frames, label_maps = render_video(plan)
            if video_ok(plan, label_maps):
                break
        else:
            raise RuntimeError(f'video {index}: no draw met the benchmark\'s conditions; use larger frames')
        hidden = [t for t, ids in enumerate(label_maps) if plan['kind'] == 'occlusion' and not (ids == 2).any()]
        plan['hidden_frames'] = hidden
        write_video(outputs, plan['name'], frames, label_maps, palette)
        videos.append(plan)
        print_log(f'turning benchmark: wrote {plan["name"]} ({num_frames} frames, {plan["kind"]}: '
                  f'{", ".join(obj["kind"] for obj in plan["objects"])}'
                  f'{f"; object 2 hidden in frames {hidden[0]}-{hidden[-1]}" if hidden else ""}) to {out_dir}',
                  logger='current')
    write_text(outputs[2], ''.join(f'{plan["name"]}\n' for plan in videos))
    meta = dict(generator=__name__, seed=seed, num_videos=num_videos, num_frames=num_frames, size=[height, width],
                sources=dict(shots=[dict(clip=clip, frames=[start, end]) for clip, start, end in BENCHMARK_SHOTS],
                             objects='textured meshes (cube, cone, rod, ring) rendered with a z-buffer: exact masks'),
                videos=videos)
    write_text(outputs[3], json.dumps(meta, indent=1, sort_keys=True) + '\n')
    return meta
