"""The composed VOS benchmark: DAVIS layout, exact masks with occlusion, reproducibility, motion,
held-out sources, and the command-line tool's errors."""
import filecmp
import importlib.util
import json
import math
import os

import cv2
import numpy as np
import pytest

from sfc_plugin.datasets import DAVISDataset
from sfc_plugin.generators.vos_benchmark import (BENCHMARK_SHOTS, load_sources, make_vos_benchmark,
                                               object_layer, object_mask, object_pose, plan_video,
                                               read_clip_frames, render_video)
from sfc_plugin.utils.io import default_palette, read_image, read_label_png

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(num_videos=2, num_frames=6, height=64, width=112, seed=3)


@pytest.fixture(scope='module')
def tiny_benchmark(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('vos') / 'bench')
    return out_dir, make_vos_benchmark(out_dir, **TINY)


def written_labels(out_dir, video):
    folder = os.path.join(out_dir, 'Annotations', '480p', video)
    return [read_label_png(os.path.join(folder, name)) for name in sorted(os.listdir(folder))]


def test_davis_layout_reads_as_davis_dataset(tiny_benchmark):
    out_dir, meta = tiny_benchmark
    dataset = DAVISDataset(out_dir, split='val')
    assert len(dataset) == 2
    names = [plan['name'] for plan in meta['videos']]
    with open(os.path.join(out_dir, 'ImageSets', '2017', 'val.txt')) as file:
        assert file.read().split() == names
    for index, plan in enumerate(meta['videos']):
        sample = dataset[index]
        assert sample['video'] == plan['name']
        assert [os.path.basename(p) for p in sample['frame_paths']] == [f'{t:05d}.jpg' for t in range(6)]
        assert len(sample['anno_paths']) == 6 and None not in sample['anno_paths']
        assert tuple(sample['ori_shape']) == (64, 112)
        ids, palette = read_label_png(sample['first_anno_path'])
        assert np.array_equal(palette, default_palette())
        assert set(np.unique(ids)) == {0, *range(1, len(plan['objects']) + 1)}
        assert 2 <= len(plan['objects']) <= 4


def test_written_masks_are_the_rendered_visible_pixels(tiny_benchmark):
    out_dir, meta = tiny_benchmark
    for plan in meta['videos']:
        frames, label_maps = render_video(plan)
        for t, ((ids, _), labels) in enumerate(zip(written_labels(out_dir, plan['name']), label_maps)):
            assert np.array_equal(ids, labels)
            jpeg = read_image(os.path.join(out_dir, 'JPEGImages', '480p', plan['name'], f'{t:05d}.jpg'))
            assert np.abs(jpeg.astype(int) - frames[t]).mean() < 6  # JPEG quality 95


def object_mask_loops(obj, t, height, width):
    """Pixels covered by an object at frame t, from the contour formula, one pixel at a time."""
    centre_x, centre_y, angle, radius = object_pose(obj['motion'], t)
    mask = np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            # object coordinates: undo the translation, the rotation and the scale
            dx, dy = x - centre_x, y - centre_y
            u = (dx * math.cos(-angle) - dy * math.sin(-angle)) / radius
            v = (dx * math.sin(-angle) + dy * math.cos(-angle)) / radius
            phi = math.atan2(v, u)
            contour = 1 + sum(a * math.cos(k * phi + p) for k, (a, p) in
                              enumerate(zip(obj['shape']['amplitudes'], obj['shape']['phases']), 1))
            mask[y, x] = math.hypot(u, v) <= contour
    return mask


def test_masks_and_colours_follow_depth_order_pixel_by_pixel():
    # Two objects placed to overlap: object 2 is in front of object 1.
    plan = plan_video(seed=5, index=0, num_frames=3, height=40, width=56, objects_min=2, objects_max=2)
    first, second = plan['objects']
    for obj, centre_x in ((first, 22.0), (second, 34.0)):
        obj['motion']['radius'] = 10.0
        obj['motion']['path']['x']['mean'] = centre_x
        obj['motion']['path']['y']['mean'] = 20.0
    plan['depth_order'] = [1, 2]
    frames, label_maps = render_video(plan)
    backgrounds, textures = load_sources(plan)
    for t in range(3):
        full = {obj['id']: object_mask_loops(obj, t, 40, 56) for obj in plan['objects']}
        assert (full[1] & full[2]).sum() > 10  # they do overlap
        for obj in plan['objects']:
            box, inside = object_mask(obj, t, 40, 56)
            placed = np.zeros((40, 56), bool)
            placed[box] = inside
            assert np.array_equal(placed, full[obj['id']])
        layers = {obj['id']: object_layer(obj, textures[obj['id']], t, 40, 56) for obj in plan['objects']}
        labels, image = label_maps[t], frames[t]
        for y in range(40):
            for x in range(56):
                front = 2 if full[2][y, x] else 1 if full[1][y, x] else 0
                assert labels[y, x] == front
                if front:
                    box, _, colours = layers[front]
                    assert np.array_equal(image[y, x], colours[y - box[0].start, x - box[1].start])
        # the occluded part of object 1 is absent from its mask
        assert not np.any(labels[full[1] & full[2]] == 1)
        assert np.count_nonzero(labels == 1) == np.count_nonzero(full[1] & ~full[2])


@pytest.mark.slow
def test_same_seed_gives_identical_files_and_another_seed_differs(tiny_benchmark, tmp_path):
    out_dir, _ = tiny_benchmark
    again = str(tmp_path / 'again')
    make_vos_benchmark(again, **TINY)
    files = sorted(os.path.relpath(os.path.join(root, name), out_dir)
                   for root, _, names in os.walk(out_dir) for name in names)
    files_again = sorted(os.path.relpath(os.path.join(root, name), again)
                         for root, _, names in os.walk(again) for name in names)
    assert files == files_again and len(files) == 2 * 6 * 2 + 2
    _, mismatch, errors = filecmp.cmpfiles(out_dir, again, files, shallow=False)
    assert mismatch == [] and errors == []

    other = str(tmp_path / 'other')
    make_vos_benchmark(other, **dict(TINY, seed=4))
    with open(os.path.join(out_dir, 'meta.json')) as a, open(os.path.join(other, 'meta.json')) as b:
        assert json.load(a)['videos'] != json.load(b)['videos']


def test_objects_move_between_frames(tiny_benchmark):
    out_dir, meta = tiny_benchmark
    for plan in meta['videos']:
        labels = [ids for ids, _ in written_labels(out_dir, plan['name'])]
        for obj in plan['objects']:
            masks = [ids == obj['id'] for ids in labels]
            assert masks[0].sum() >= 16
            changed = [not np.array_equal(a, b) for a, b in zip(masks, masks[1:])]
            assert all(changed), (plan['name'], obj['id'])
            poses = [object_pose(obj['motion'], t) for t in range(6)]
            assert math.hypot(poses[-1][0] - poses[0][0], poses[-1][1] - poses[0][1]) > 0.5


def test_backgrounds_move_and_come_from_held_out_shots(tiny_benchmark):
    out_dir, meta = tiny_benchmark
    held_out = {(clip, start, end) for clip, start, end in BENCHMARK_SHOTS}
    for plan in meta['videos']:
        background = plan['background']
        shot = (background['clip'], *background['shot'])
        assert shot in held_out
        start, stop = background['frames']
        assert shot[1] <= start and stop <= shot[2] and stop - start == 6  # no scene cut crossed
        for obj in plan['objects']:
            texture_shot = next(s for s in BENCHMARK_SHOTS if s[0] == obj['texture']['clip']
                                and s[1] <= obj['texture']['frame'] < s[2])
            assert texture_shot != shot
        frames = [read_image(os.path.join(out_dir, 'JPEGImages', '480p', plan['name'], f'{t:05d}.jpg'))
                  for t in (0, 5)]
        labels = [ids for ids, _ in written_labels(out_dir, plan['name'])]
        background_pixels = (labels[0] == 0) & (labels[5] == 0)
        assert np.abs(frames[0].astype(int) - frames[1])[background_pixels].mean() > 1
    used = json.dumps(meta['sources']) + json.dumps(meta['videos'])
    assert 'carphone' not in json.dumps(meta['videos']) and 'carphone_pristine.mp4 (demo)' in used
    assert all(start >= 137 for clip, start, _ in BENCHMARK_SHOTS if clip == 'bikes.mp4')


def test_held_out_shots_are_the_clips_real_shots():
    """The shot table against the footage: a cut at each boundary, none inside a shot."""
    frames = read_clip_frames('bikes.mp4', range(125, 250))
    small = {i: cv2.resize(f, (160, 68), interpolation=cv2.INTER_AREA).astype(np.float32)
             for i, f in frames.items()}
    change = {i: np.abs(small[i] - small[i - 1]).mean() for i in range(126, 250)}
    boundaries = {start for clip, start, _ in BENCHMARK_SHOTS if clip == 'bikes.mp4'}
    assert boundaries == {137, 187, 242}
    assert all(change[i] > 25 for i in boundaries)
    assert all(change[i] < 25 for i in range(138, 250) if i not in boundaries)


def test_output_folder_rules(tmp_path):
    out_dir = tmp_path / 'bench'
    out_dir.mkdir()
    (out_dir / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not empty'):
        make_vos_benchmark(str(out_dir), **dict(TINY, num_videos=1))
    stale = out_dir / 'JPEGImages' / '480p' / 'old_video'
    stale.mkdir(parents=True)
    make_vos_benchmark(str(out_dir), **dict(TINY, num_videos=1), overwrite=True)
    assert not stale.exists() and (out_dir / 'notes.txt').read_text() == 'keep me'
    assert len(DAVISDataset(str(out_dir), split='val')) == 1
    assert not [name for _, _, names in os.walk(out_dir) for name in names if '.tmp' in name]


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_frames=200), 'no held-out shot has 200 frames'),
    (dict(objects_min=3, objects_max=2), 'objects_min'),
    (dict(height=16), 'at least 32x32'),
    (dict(num_frames=1), 'at least 2 frames'),
])
def test_invalid_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_vos_benchmark(str(tmp_path / 'bench'), **dict(TINY, **kwargs))


def make_vos_benchmark_cli(argv):
    spec = importlib.util.spec_from_file_location(
        'make_vos_benchmark_cli', os.path.join(REPO_ROOT, 'tools', 'make_vos_benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_command_line(tmp_path, capsys):
    out_dir = str(tmp_path / 'cli')
    argv = ['--out', out_dir, '--videos', '1', '--frames', '3', '--height', '48', '--width', '64',
            '--seed', '1', '--objects-min', '3', '--objects-max', '3']
    assert make_vos_benchmark_cli(argv) == 0
    with open(os.path.join(out_dir, 'meta.json')) as file:
        meta = json.load(file)
    assert (meta['seed'], meta['size'], len(meta['videos'][0]['objects'])) == (1, [48, 64], 3)
    assert make_vos_benchmark_cli(argv) == 1
    assert 'not empty' in capsys.readouterr().err
    assert make_vos_benchmark_cli(argv + ['--overwrite']) == 0
