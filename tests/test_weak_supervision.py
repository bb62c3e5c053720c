"""Weak supervision (class folders -> pseudo-labelled SPair-71k pairs): exact warps, voting, the cycle check, resume."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT
from sfc_plugin.correspondence import SPair71kDataset
from sfc_plugin.correspondence.weak_supervision import (WeakPairSettings, WeakSupervisionError, consistency_check,
                                                        list_class_images, make_weak_pairs, model_from_config,
                                                        vote_matches)
from sfc_plugin.generators.offline_data import skimage_photo

SIZE = (192, 144)  # (W, H) of every test image
TINY_CONFIG = """
model = dict(
    type='PairMatchingModel',
    backbone=dict(type='SFCBackbone', fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
)
"""


def _affine(angle: float, scale: float, shift) -> np.ndarray:
    """(3, 3) rotation by ``angle`` degrees and scaling about the image centre, then a shift."""
    matrix = np.eye(3)
    matrix[:2] = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), angle, scale)
    matrix[:2, 2] += shift
    return matrix


# Each class: a photo (image a) and two exact affine warps of it (b, c); the matrices map a's pixels.
WARPS = dict(a=np.eye(3), b=_affine(8, 0.9, (6, -4)), c=_affine(-6, 1.08, (-5, 3)))
PHOTOS = dict(cat='chelsea', coffee='coffee')


@pytest.fixture(scope='module')
def warp_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('classes')
    for category, photo in PHOTOS.items():
        image = cv2.resize(skimage_photo(photo), SIZE, interpolation=cv2.INTER_AREA)
        os.makedirs(root / category)
        for name, matrix in WARPS.items():
            warped = cv2.warpAffine(image, matrix[:2], SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            cv2.imwrite(str(root / category / f'{name}.png'), cv2.cvtColor(warped, cv2.COLOR_RGB2BGR))
    return str(root)


@pytest.fixture(scope='module')
def model():
    """The built-in semantic pair model (EfficientNet-Lite0 ImageNet hyperpixels)."""
    return model_from_config()


@pytest.fixture(scope='module')
def written(warp_root, model, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp('weak') / 'pairs')
    make_weak_pairs(warp_root, out, model, WeakPairSettings(pairs_per_image=2), progress=False)
    return out


def _tree(folder: str) -> dict:
    """{relative path: bytes} of every file under ``folder``."""
    files = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            files[os.path.relpath(path, folder)] = open(path, 'rb').read()
    return files


def test_pseudo_keypoints_land_where_the_warp_maps_them(written, warp_root):
    dataset = SPair71kDataset(data_root=written, split='trn')
    assert len(dataset) >= 4
    errors = []
    for index in range(len(dataset)):
        sample = dataset[index]
        source, target = (os.path.splitext(os.path.basename(sample[key]))[0] for key in ('src_path', 'trg_path'))
        transform = WARPS[target] @ np.linalg.inv(WARPS[source])  # source pixels -> target pixels
        expected = sample['src_kps'] @ transform[:2, :2].T + transform[:2, 2]
        error = np.linalg.norm(sample['trg_kps'] - expected, axis=1)
        assert len(error) >= 5 and np.median(error) < 5, (sample['pair_id'], error)
        errors.append(error)
        for role in ('src', 'trg'):
            box = sample[f'{role}_bbox']
            assert ((sample[f'{role}_kps'] >= box[:2] - 1) & (sample[f'{role}_kps'] <= box[2:] + 1)).all()
        assert sample['difficulty'] == dict(viewpoint_variation=0, scale_variation=0, truncation=0, occlusion=0)
        linked = os.path.join(warp_root, sample['category'], os.path.basename(sample['src_path']))
        assert os.path.samefile(sample['src_path'], linked)  # hard-linked, not re-encoded
    assert np.median(np.concatenate(errors)) < 3  # pixels of 192 x 144 images: under half a feature cell


def test_pair_files_record_how_they_were_made(written):
    dataset = SPair71kDataset(data_root=written, split='trn')
    line = dataset[0]['pair_id']
    record = json.load(open(os.path.join(written, 'PairAnnotation', 'trn', f'{line}.json')))
    label = record['pseudo_label']
    assert 'after the abstract' in label['origin']
    assert len(label['confidence']) == len(label['cycle_error_px']) == len(record['src_kps'])
    assert min(label['confidence']) >= WeakPairSettings().min_confidence
    assert max(label['cycle_error_px']) <= label['cycle_tolerance_px']
    assert label['third_images'] and label['pixel_matches'] >= label['calibrated'] >= label['voted']
    meta = json.load(open(os.path.join(written, 'meta.json')))
    assert meta['finished'] and meta['settings']['pairs_per_image'] == 2
    assert meta['pairs'] == len(dataset)


def test_voting_drops_injected_outliers():
    rng = np.random.default_rng(0)
    src_box, trg_box = np.array([10.0, 10, 110, 90]), np.array([50.0, 40, 250, 200])  # the target is twice as large
    src_inliers = rng.uniform(src_box[:2] + 1, src_box[2:] - [15, 1], (40, 2))
    # inliers keep their place in the box, shifted by 0.1 of the target box along x (still inside it), with
    # 1-pixel noise
    trg_inliers = (trg_box[:2] + (src_inliers - src_box[:2]) * 2 + [20, 0]
                   + rng.uniform(-1, 1, (40, 2)))
    src_outliers = rng.uniform(src_box[:2] + 20, src_box[2:] - 20, (10, 2))
    trg_outliers = trg_box[:2] + (src_outliers - src_box[:2]) * 2 + [20, 0] + rng.choice([-1, 1], (10, 2)) * 70
    src_outside, trg_outside = np.array([[5.0, 50]]), np.array([[60.0, 120]])  # consistent, but off the source mask
    src_points = np.concatenate([src_inliers, src_outliers, src_outside])
    trg_points = np.concatenate([trg_inliers, trg_outliers, trg_outside])
    kept, offset = vote_matches(src_points, trg_points, np.ones(len(src_points)), src_box, trg_box)
    assert kept.tolist() == [True] * 40 + [False] * 11
    assert np.allclose(offset, [0.1, 0.0], atol=0.01)
    weightless, _ = vote_matches(src_points, trg_points, np.zeros(len(src_points)), src_box, trg_box)
    assert not weightless.any()  # a match below the confidence threshold (weight 0) never survives


def test_consistency_check_drops_a_keypoint_whose_cycle_does_not_close():
    to_b = np.array([[0.9, -0.1, 12.0], [0.1, 0.9, -3.0]])  # A -> B
    to_c = np.array([[1.1, 0.05, -4.0], [-0.05, 1.1, 6.0]])  # A -> C
    from_c_to_b = (np.vstack([to_b, [0, 0, 1]]) @ np.linalg.inv(np.vstack([to_c, [0, 0, 1]])))[:2]  # exact C -> B
    source = np.array([[20.0, 30], [60, 40], [90, 80], [40, 100], [120, 20]])
    target = source @ to_b[:, :2].T + to_b[:, 2]

    def apply(matrix):
        return lambda points: points @ matrix[:, :2].T + matrix[:, 2]

    def broken_c_to_b(points):  # the map is wrong where keypoint 1 lands in C
        moved = apply(from_c_to_b)(points)
        moved[1] += [6.0, 0]
        return moved

    def losing_a_to_c(points):  # no match in C for keypoint 3
        moved = apply(to_c)(points)
        moved[3] = np.nan
        return moved

    kept, errors = consistency_check(source, target, [(apply(to_c), apply(from_c_to_b))], tolerance=3.0)
    assert kept.all() and np.allclose(errors, 0, atol=1e-9)
    kept, errors = consistency_check(source, target, [(apply(to_c), broken_c_to_b)], tolerance=3.0)
    assert kept.tolist() == [True, False, True, True, True] and errors[1] == pytest.approx(6.0)
    kept, errors = consistency_check(source, target, [(apply(to_c), apply(from_c_to_b)), (losing_a_to_c,
                                                                                           apply(from_c_to_b))], 3.0)
    assert kept.tolist() == [True, True, True, False, True] and errors[3] == np.inf  # every third image must agree


@pytest.mark.slow
def test_resume_gives_the_output_of_one_run(warp_root, model, written, tmp_path):
    out = str(tmp_path / 'pairs')
    settings = WeakPairSettings(pairs_per_image=2)
    first = make_weak_pairs(warp_root, out, model, settings, progress=False, max_pairs=3)  # class 'cat': 3 pairs
    assert not first['finished'] and list(first['classes']) == ['cat']
    second = make_weak_pairs(warp_root, out, model, settings, progress=False, max_pairs=1)  # into 'coffee'
    assert not second['finished'] and second['classes']['coffee']['pairs_done'] == 1
    last = make_weak_pairs(warp_root, out, model, settings, progress=False)
    assert last['finished']
    assert _tree(out) == _tree(written)
    with pytest.raises(WeakSupervisionError, match='other settings.*min_keypoints'):
        make_weak_pairs(warp_root, out, model, WeakPairSettings(pairs_per_image=2, min_keypoints=6), progress=False)


def test_refuses_animals_and_names_empty_folders(tmp_path, warp_root, model):
    held_out = tmp_path / 'stamps' / 'animals'
    (held_out / 'cats').mkdir(parents=True)
    cv2.imwrite(str(held_out / 'cats' / 'a.png'), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(WeakSupervisionError, match='animals/.*refused'):
        list_class_images(str(held_out))
    with pytest.raises(WeakSupervisionError, match='animals/.*refused'):
        list_class_images(str(tmp_path / 'stamps'))  # a class folder named animals
    empty = tmp_path / 'empty'
    (empty / 'dogs').mkdir(parents=True)
    (empty / 'dogs' / 'notes.txt').write_text('not an image')
    with pytest.raises(WeakSupervisionError, match=f'{empty}: no class folder with images'):
        list_class_images(str(empty))
    with pytest.raises(WeakSupervisionError, match='no such folder'):
        list_class_images(str(tmp_path / 'missing'))
    with pytest.raises(WeakSupervisionError, match='must not lie inside the image folder'):
        make_weak_pairs(warp_root, os.path.join(warp_root, 'out'), model, progress=False)


def _tool():
    spec = importlib.util.spec_from_file_location('make_weak_pairs_tool',
                                                  os.path.join(REPO_ROOT, 'tools', 'make_weak_pairs.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tool_help_errors_and_a_run(tmp_path, warp_root, capsys):
    tool = _tool()
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['--help'])
    assert exit_info.value.code == 0 and '--pairs-per-image' in capsys.readouterr().out
    (tmp_path / 'empty').mkdir()
    assert tool.main([str(tmp_path / 'empty'), '--out', str(tmp_path / 'out')]) == 1
    assert f'{tmp_path / "empty"}: no class folder with images' in capsys.readouterr().err
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_CONFIG)
    out = tmp_path / 'tiny_pairs'
    assert tool.main([warp_root, '--out', str(out), '--config', str(config), '--pairs-per-image', '1',
                      '--no-progress']) == 0
    assert 'make_weak_pairs: done' in capsys.readouterr().out
    meta = json.load(open(out / 'meta.json'))
    assert meta['settings']['model']['config'] == str(config) and meta['settings']['pairs_per_image'] == 1
    assert os.path.isfile(out / 'Layout' / 'large' / 'trn.txt')
