"""The turning VOS benchmark: its renderer against projections computed by hand, the z-buffer's masks, and the
written benchmark (DAVIS layout, hidden-and-returning objects, determinism)."""
import json
import os

import numpy as np
import pytest

from sfc_plugin.datasets import DAVISDataset
from sfc_plugin.generators.turning_benchmark import (FOCAL, KINDS, make_mesh, make_turning_benchmark, render_frame,
                                                     rotation)
from sfc_plugin.utils import read_label_png

HEIGHT, WIDTH = 120, 160


def still_object(object_id, kind, size, centre):
    """An object that neither moves nor turns (identity orientation)."""
    return dict(id=object_id, kind=kind, size=list(size),
                motion=dict(axis=[0, 0, 1], degrees_per_frame=0.0, start_angle=0.0, tilt_axis=[0, 0, 1], tilt=0.0,
                            centre=list(centre), velocity=[0.0, 0.0, 0.0]))


def flat_texture(value):
    return np.full((16, 16, 3), float(value))


def test_a_cube_facing_the_camera_is_the_square_of_its_front_face():
    half, z = 0.5, 5.0
    cube = still_object(1, 'cube', [half], [0.0, 0.0, z])
    _, ids = render_frame([cube], {1: flat_texture(200)}, np.zeros((HEIGHT, WIDTH, 3), np.uint8), 0)
    focal = FOCAL * WIDTH
    # The front face, at depth z - half, spans x in centre +- focal * half / (z - half): pixel centres inside it.
    left, right = WIDTH / 2 - focal * half / (z - half), WIDTH / 2 + focal * half / (z - half)
    top, bottom = HEIGHT / 2 - focal * half / (z - half), HEIGHT / 2 + focal * half / (z - half)
    xs, ys = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    expected = (xs >= left) & (xs <= right) & (ys >= top) & (ys <= bottom)
    assert np.array_equal(ids == 1, expected)


def test_the_nearer_object_owns_the_pixels_whatever_the_drawing_order():
    near = still_object(1, 'cube', [0.5], [0.2, 0.0, 4.0])
    far = still_object(2, 'cube', [0.8], [-0.2, 0.0, 7.0])
    background = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    textures = {1: flat_texture(100), 2: flat_texture(250)}
    image_a, ids_a = render_frame([near, far], textures, background, 0)
    image_b, ids_b = render_frame([far, near], textures, background, 0)
    assert np.array_equal(ids_a, ids_b) and np.array_equal(image_a, image_b)
    near_alone = render_frame([near], textures, background, 0)[1] == 1
    assert np.array_equal(ids_a == 1, near_alone)  # the near cube is whole; the far one only around it
    assert (ids_a == 2).any() and not ((ids_a == 2) & near_alone).any()


def test_a_rod_seen_end_on_is_a_small_disc_and_side_on_a_thin_line():
    rod = still_object(1, 'rod', [0.05, 2.4], [0.0, 0.0, 6.0])  # along z: end-on
    background = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    end_on = (render_frame([rod], {1: flat_texture(200)}, background, 0)[1] == 1).sum()
    rod['motion'].update(tilt_axis=[1, 0, 0], tilt=90.0)  # along y: side-on
    side_on = render_frame([rod], {1: flat_texture(200)}, background, 0)[1] == 1
    rows, columns = np.nonzero(side_on)
    # end-on: the near cap, radius 192 * 0.05 / 4.8 = 2 px, about 12.6 pixels; side-on: about 2.7 px wide
    assert 6 <= end_on <= 20 and columns.max() - columns.min() + 1 <= 4
    assert rows.max() - rows.min() + 1 >= 60  # 2.4 units long: about 77 px


@pytest.mark.parametrize('kind', KINDS)
def test_meshes_are_closed_surfaces(kind):
    size = {'cube': [1.0], 'cone': [0.7, 1.6], 'rod': [0.05, 2.0], 'ring': [0.9, 0.06]}[kind]
    vertices, faces, coords = make_mesh(kind, size)
    assert faces.min() >= 0 and faces.max() < len(vertices) and coords.shape == (len(faces), 3, 2)
    areas = np.linalg.norm(np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]],
                                    vertices[faces[:, 2]] - vertices[faces[:, 0]]), axis=1)
    edges = {}
    for face in faces[areas > 1e-9]:  # the revolved meshes' poles give zero-area triangles, never drawn
        for a, b in ((face[0], face[1]), (face[1], face[2]), (face[2], face[0])):
            key = tuple(sorted(tuple(point) for point in np.round(vertices[[a, b]], 6).tolist()))
            edges[key] = edges.get(key, 0) + 1
    degenerate = {key for key in edges if key[0] == key[1]}
    assert all(count == 2 for key, count in edges.items() if key not in degenerate)  # every edge shared by 2


def test_rotation_is_orthonormal_and_turns_about_its_axis():
    turn = rotation([0, 0, 2], np.pi / 2)
    assert np.allclose(turn @ turn.T, np.eye(3)) and np.allclose(turn @ [1, 0, 0], [0, 1, 0])


@pytest.mark.slow
def test_the_written_benchmark(tmp_path):
    out = str(tmp_path / 'turning')
    meta = make_turning_benchmark(out, num_videos=2, num_frames=24, height=96, width=176, seed=3)
    dataset = DAVISDataset(data_root=out)
    assert len(dataset) == 2
    free, occlusion = meta['videos']
    assert free['kind'] == 'free' and [obj['kind'] for obj in free['objects']][1:] == ['rod', 'ring']
    assert occlusion['kind'] == 'occlusion' and len(occlusion['hidden_frames']) >= 3
    ids = [read_label_png(os.path.join(out, 'Annotations', '480p', occlusion['name'], f'{t:05d}.png'))[0]
           for t in range(24)]
    hidden = [t for t in range(24) if not (ids[t] == 2).any()]
    assert hidden == occlusion['hidden_frames'] and (ids[0] == 2).sum() >= 16 and (ids[-1] == 2).sum() >= 16
    with open(os.path.join(out, 'meta.json')) as file:
        assert json.load(file)['videos'][1]['hidden_frames'] == hidden
    again = make_turning_benchmark(str(tmp_path / 'again'), num_videos=2, num_frames=24, height=96, width=176, seed=3)
    assert again['videos'] == meta['videos']
    first = read_label_png(os.path.join(str(tmp_path / 'again'), 'Annotations', '480p', occlusion['name'],
                                        '00010.png'))[0]
    assert np.array_equal(first, ids[10])
