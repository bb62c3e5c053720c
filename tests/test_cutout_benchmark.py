"""The cut-out VOS benchmark: DAVIS layout, exact masks from the stamps' alpha (against an analytic
recomputation), depth order, objects that leave and come back, disjoint splits, clear errors.

The real sources (tuxpaint stamps, opencv-doc clips) are Debian packages; the tests make small
stand-ins of both in the same layout."""
import json
import math
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from sfc_plugin.datasets import DAVISDataset
from sfc_plugin.generators.cutout_benchmark import (CLIP_SPLITS, _plan_object, list_stamps, make_cutout_benchmark,
                                                  object_pose, render_video, stamp_split)


def write_rgba(path, rgba):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


def bug_stamp(seed: int) -> np.ndarray:
    """A 120 x 160 RGBA 'insect': an opaque textured ellipse with thin legs, transparent around."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (120, 160, 3))
    alpha = np.zeros((120, 160), np.uint8)
    cv2.ellipse(alpha, (80, 60), (50, 30), 0, 0, 360, 255, -1)
    for dx in (-30, 0, 30):
        cv2.line(alpha, (80 + dx, 60), (80 + dx + 20, 115), 255, 2)
    rgba[..., 3] = alpha
    return rgba


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp('sources')
    stamps = root / 'stamps'
    for index in range(12):
        write_rgba(str(stamps / 'animals' / 'insects' / f'bug{index}.png'), bug_stamp(index))
    write_rgba(str(stamps / 'animals' / 'cartoon' / 'drawn.png'), bug_stamp(100))  # excluded folder
    write_rgba(str(stamps / 'symbols' / 'letter.png'), bug_stamp(101))  # excluded folder
    cv2.imwrite(str(stamps / 'animals' / 'opaque.png'), np.full((120, 160, 3), 90, np.uint8))  # no alpha
    data = root / 'opencv_data'
    data.mkdir()
    for clip, ranges in CLIP_SPLITS.items():
        count = max(end for _, end in ranges.values())
        writer = cv2.VideoWriter(str(data / clip), cv2.VideoWriter_fourcc(*'MJPG'), 10, (96, 72))
        rng = np.random.default_rng(len(clip))
        scene = cv2.resize(rng.integers(0, 256, (18, 24, 3), dtype=np.uint8), (96 + count, 72))
        for t in range(count):
            writer.write(np.ascontiguousarray(scene[:, t:t + 96]))
        writer.release()
    return str(stamps), str(data)


@pytest.fixture(scope='module')
def tune_set(sources, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('cutout') / 'tune')
    meta = make_cutout_benchmark(out, *sources, split='tune', num_videos=2, num_frames=8, height=64, width=112)
    return out, meta


def test_stamps_are_photographic_rgba_and_split_by_path(sources):
    stamps_dir, _ = sources
    tune, report = list_stamps(stamps_dir, 'tune'), list_stamps(stamps_dir, 'report')
    assert tune and report and not set(tune) & set(report)
    assert sorted(tune + report) == sorted(os.path.join('animals', 'insects', f'bug{i}.png') for i in range(12))
    assert all(stamp_split(path) == 'tune' for path in tune)


def test_davis_layout_and_every_object_in_frame_0(tune_set, sources):
    out, meta = tune_set
    dataset = DAVISDataset(data_root=out, split='val')
    assert len(dataset) == 2
    tune_stamps = set(list_stamps(sources[0], 'tune'))
    for plan in meta['videos']:
        first = np.array(Image.open(os.path.join(out, 'Annotations', '480p', plan['name'], '00000.png')))
        assert Image.open(os.path.join(out, 'Annotations', '480p', plan['name'], '00000.png')).mode == 'P'
        assert set(np.unique(first)) == {0, *range(1, len(plan['objects']) + 1)}
        assert {obj['stamp'] for obj in plan['objects']} <= tune_stamps
        start, stop = plan['background']['frames']
        first_allowed, end_allowed = CLIP_SPLITS[plan['background']['clip']]['tune']
        assert first_allowed <= start and stop <= end_allowed and stop - start == 8
        assert plan['objects'][0]['size_class'] == 'small'
    with open(os.path.join(out, 'meta.json')) as f:
        assert json.load(f)['split'] == 'tune'


def test_written_masks_are_the_rendered_ones_and_seeded(tune_set, sources, tmp_path):
    out, meta = tune_set
    plan = meta['videos'][1]
    _, label_maps = render_video(plan, *sources)
    for t, labels in enumerate(label_maps):
        written = np.array(Image.open(os.path.join(out, 'Annotations', '480p', plan['name'], f'{t:05d}.png')))
        np.testing.assert_array_equal(written, labels)
    again = make_cutout_benchmark(str(tmp_path / 'again'), *sources, split='tune', num_videos=2, num_frames=8,
                                  height=64, width=112)
    assert again['videos'] == meta['videos']


def solid_plan(objects, height=60, width=100):
    """A hand-made plan: still objects (no rotation, scale change or motion)."""
    still = dict(drift=[0.0, 0.0], sweep=dict(amplitude=0.0, period=3.0),
                 wobble=dict(amplitude=[0.0, 0.0], frequency=0.0, phase=[0.0, 0.0]),
                 angle=0.0, angular_velocity=0.0, log_scale_amplitude=0.0, scale_frequency=0.0)
    return dict(name='solid', size=[height, width], num_frames=2,
                background=dict(clip='vtest.avi', frames=[0, 2], crop_size=[96.0, 57.6],
                                crop_start=[0.0, 0.0], crop_end=[0.0, 0.0]),
                objects=[dict(id=i + 1, stamp=stamp, height=h, flip=False, motion=dict(still, start=centre))
                         for i, (stamp, h, centre) in enumerate(objects)],
                depth_order=[1, 2])


def test_masks_are_the_alpha_half_level_and_follow_depth_order(sources, tmp_path):
    """Two opaque rectangles (solid colours) zoomed 2x: each mask is where the bilinearly warped
    alpha reaches 0.5, computed here from the geometry alone; the front one wins the overlap."""
    stamps_dir = str(tmp_path / 'stamps')
    for name, colour, (rows, cols) in (('back.png', (255, 0, 0), ((4, 13), (5, 24))),
                                       ('front.png', (0, 0, 255), ((2, 9), (3, 10)))):
        rgba = np.zeros((20, 30, 4), np.uint8)
        rgba[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = (*colour, 255)
        write_rgba(os.path.join(stamps_dir, name), rgba)
    plan = solid_plan([('back.png', 40.0, [50.0, 30.0]), ('front.png', 40.0, [40.0, 26.0])])
    frames, label_maps = render_video(plan, stamps_dir, sources[1])

    def expected_mask(rows, cols, centre):
        # frame pixel p <- stamp coordinate s = (p - centre) / 2 + (side - 1) / 2; the bilinear
        # interpolation of an opaque block [first, last] is separable, per axis
        # clip(min(s - first + 1, last + 1 - s), 0, 1); the mask is where the product reaches 0.5
        ys, xs = np.mgrid[:60, :100]
        sy, sx = (ys - centre[1]) / 2 + 9.5, (xs - centre[0]) / 2 + 14.5
        alpha_y = np.clip(np.minimum(sy - rows[0] + 1, rows[1] + 1 - sy), 0, 1)
        alpha_x = np.clip(np.minimum(sx - cols[0] + 1, cols[1] + 1 - sx), 0, 1)
        return alpha_y * alpha_x >= 0.5

    back = expected_mask((4, 13), (5, 24), (50.0, 30.0))
    front = expected_mask((2, 9), (3, 10), (40.0, 26.0))
    expected = np.where(front, 2, np.where(back, 1, 0))
    for labels, image in zip(label_maps, frames):
        np.testing.assert_array_equal(labels, expected)
        inner_front = cv2.erode(front.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert np.abs(image[inner_front].astype(int) - (0, 0, 255)).max() <= 1
        inner_back = cv2.erode((back & ~front).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert inner_back.any() and np.abs(image[inner_back].astype(int) - (255, 0, 0)).max() <= 1


def test_an_object_that_leaves_the_frame_comes_back():
    rng = np.random.default_rng(3)
    height, width, frames = 120, 200, 30
    for _ in range(20):
        obj = _plan_object(rng, 1, ['a.png'], 'medium', True, frames, height, width)
        x_start = object_pose(obj['motion'], 0)[0]
        x_middle = object_pose(obj['motion'], (frames - 1) / 2)[0]
        x_end = object_pose(obj['motion'], frames - 1)[0]
        margin = obj['height']  # farther out than the object's half-diagonal of the typical stamp
        assert 0 <= x_start <= width and 0 <= x_end <= width
        assert x_middle > width + margin or x_middle < -margin
        assert math.isclose(x_start, x_end, abs_tol=0.1 * width)


def test_errors_name_what_is_missing(sources, tmp_path):
    stamps_dir, data_dir = sources
    with pytest.raises(FileNotFoundError, match='nowhere'):
        make_cutout_benchmark(str(tmp_path / 'a'), str(tmp_path / 'nowhere'), data_dir)
    with pytest.raises(FileNotFoundError, match='vtest.avi'):
        make_cutout_benchmark(str(tmp_path / 'b'), stamps_dir, str(tmp_path))
    with pytest.raises(ValueError, match='at most 34'):
        make_cutout_benchmark(str(tmp_path / 'c'), stamps_dir, data_dir, num_frames=40)
    with pytest.raises(ValueError, match='split'):
        make_cutout_benchmark(str(tmp_path / 'd'), stamps_dir, data_dir, split='train')
