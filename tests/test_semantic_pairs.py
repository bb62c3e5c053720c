"""The cross-instance semantic pair set: hand annotations, the composite's exact keypoints, the SPair layout."""
import copy
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from sfc_plugin.correspondence import PairDataError, SPair71kDataset
from sfc_plugin.generators import pair_benchmark
from sfc_plugin.generators.semantic_pairs import (OPENCV_DOC_BACKGROUNDS, SKIMAGE_BACKGROUNDS, TRN_BACKGROUNDS,
                                                  AnnotationError, annotation_problems, composite, load_annotations,
                                                  plan_pairs, write_class_folders, write_semantic_pairs)

STAMPS_DIR = os.environ.get('SFC_TUXPAINT_STAMPS', '/usr/share/tuxpaint/stamps')
DOT_COLOURS = {'nose': (255, 0, 0), 'tail': (0, 0, 255), 'top': (0, 255, 0), 'a': (255, 0, 255), 'b': (0, 255, 255),
               'side_left': (255, 0, 0), 'side_right': (0, 0, 255)}
BODY = 128  # grey of the synthetic stamps' bodies


def _stamp(path: str, size: tuple, body: tuple, dots: dict) -> None:
    """An RGBA stamp: transparent, a grey opaque body box (x1, y1, x2, y2) and 7 x 7 dots centred on ``dots``."""
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    x1, y1, x2, y2 = body
    rgba[y1:y2 + 1, x1:x2 + 1] = (BODY, BODY, BODY, 255)
    for name, (x, y) in dots.items():
        rgba[y - 3:y + 4, x - 3:x + 4, :3] = DOT_COLOURS[name]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rgba).save(path)


def _gradient_colour(points: np.ndarray) -> np.ndarray:
    """The unlabelled synthetic stamps' colour at stamp pixels x, y (N, 2): red grows with x, green with y."""
    return np.stack([30 + 4 * points[:, 0], 30 + 5 * points[:, 1], np.full(len(points), 100)], axis=1)


def _gradient_stamp(path: str, size: tuple, ellipse: bool) -> None:
    """An RGBA stamp coloured by ``_gradient_colour``: an opaque box 5 pixels in from the border, or an
    ellipse whose alpha falls off over 3 pixels at its edge (so that alpha >= 0.5 is not alpha > 0)."""
    ys, xs = np.mgrid[:size[1], :size[0]].astype(np.float64)
    colour = _gradient_colour(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(size[1], size[0], 3)
    if ellipse:
        radius = np.hypot((xs - (size[0] - 1) / 2) / (size[0] / 2 - 4), (ys - (size[1] - 1) / 2) / (size[1] / 2 - 4))
        alpha = np.clip((1 - radius) * min(size) / 6, 0, 1) * 255
    else:
        alpha = np.zeros(xs.shape)
        alpha[5:-5, 5:-5] = 255
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.dstack([colour, alpha]).round().astype(np.uint8)).save(path)


def _synthetic_set(root: str) -> dict:
    """Stamps under ``root`` and their annotation: two test categories (one with a facing), one val
    category with a flip pair, one unlabelled category (two colour-gradient stamps)."""
    def instance(stamp, split, facing, dots, size=(60, 40), body=(6, 6, 53, 33)):
        _stamp(os.path.join(root, stamp), size, body, {name: point for name, point in dots.items() if point})
        return dict(stamp=stamp, split=split, facing=facing,
                    keypoints={name: list(point) if point else None for name, point in dots.items()})
    widget = dict(split='test', keypoints=['nose', 'tail', 'top'], flip_pairs=[], instances={
        'w1': instance('toys/w1.png', 'test', 'right', {'nose': (48, 20), 'tail': (12, 22), 'top': (30, 11)}),
        'w-2': instance('toys/w-2.png', 'test', 'left', {'nose': (11, 18), 'tail': (47, 20), 'top': (28, 12)}),
        'w3': instance('toys/w3.png', 'test', 'right', {'nose': (62, 30), 'tail': (12, 30), 'top': None},
                       size=(76, 44), body=(6, 6, 69, 37))})
    gadget = dict(split='test', keypoints=['a', 'b'], flip_pairs=[], instances={
        'g1': instance('toys/g1.png', 'test', None, {'a': (20, 12), 'b': (40, 28)}),
        'g2': instance('toys/g2.png', 'test', None, {'a': (18, 14), 'b': (42, 26)})})
    blob = dict(split='val', keypoints=['top', 'side_left', 'side_right'], flip_pairs=[['side_left', 'side_right']],
                instances={
        'b1': instance('blobs/b1.png', 'val', None, {'top': (30, 11), 'side_left': (11, 22), 'side_right': (48, 22)}),
        'b2': instance('blobs/b2.png', 'val', None, {'top': (30, 10), 'side_left': (12, 24), 'side_right': (47, 24)})})
    _gradient_stamp(os.path.join(root, 'other', 't1.png'), (50, 30), ellipse=False)
    _gradient_stamp(os.path.join(root, 'other', 't2.png'), (56, 40), ellipse=True)
    return dict(categories=dict(widget=widget, gadget=gadget, blob=blob),
                unlabelled=dict(categories=dict(thing=['other/t1.png', 'other/t2.png'])))


def _files(root: str) -> dict:
    digests = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            digests[os.path.relpath(path, root)] = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    return digests


def test_annotation_file_is_well_formed():
    annotations = load_annotations()  # raises on a structural problem
    categories = annotations['categories']
    splits = {split: {name for name, entry in categories.items() if entry['split'] == split}
              for split in ('test', 'val', 'trn')}
    assert len(splits['test']) >= 3 and len(splits['val']) >= 2 and len(splits['trn']) >= 2
    stamps = {split: {record['stamp'] for name in names for record in categories[name]['instances'].values()}
              for split, names in splits.items()}
    unlabelled = {stamp for group in annotations['unlabelled']['categories'].values() for stamp in group}
    assert not stamps['test'] & (stamps['val'] | stamps['trn'] | unlabelled)
    assert not stamps['val'] & (stamps['trn'] | unlabelled) and not stamps['trn'] & unlabelled
    assert not set(annotations['unlabelled']['categories']) & set(categories)
    assert not any(stamp.startswith('animals/') for group in stamps.values() for stamp in group | unlabelled)
    for name in splits['trn']:  # cross-instance training pairs need two instances at least
        assert len(categories[name]['instances']) >= 2, name
    for name, entry in categories.items():
        assert set(entry['definitions']) == set(entry['keypoints']), name
        paired = {side for pair in entry['flip_pairs'] for side in pair}
        for keypoint in entry['keypoints']:  # image-side names only where the mirror swaps them
            assert ('left' in keypoint or 'right' in keypoint) == (keypoint in paired), (name, keypoint)
        for record in entry['instances'].values():
            assert set(record['keypoints']) <= set(entry['keypoints'])
            assert sum(value is not None for value in record['keypoints'].values()) >= 2
        facings = {record['facing'] for record in entry['instances'].values()}
        assert facings <= ({'left', 'right'} if 'facing_means' in entry else {None}), name
    # the tune split has categories that face a way, so that some of its pairs face opposite ways
    assert any('facing_means' in categories[name] for name in splits['val'])


def test_annotation_check_finds_each_problem():
    good = load_annotations()
    assert annotation_problems(good) == []
    broken = copy.deepcopy(good)
    car = broken['categories']['car']['instances']
    first, second = list(car)[:2]
    car[first]['keypoints']['left_mirror'] = [1, 1]
    car[second]['split'] = 'val'
    broken['categories']['jug']['instances']['mug']['stamp'] = 'animals/cats/cat.png'
    broken['unlabelled']['categories']['fruit'].append(car[first]['stamp'])
    broken['unlabelled']['categories']['nut'].append(good['categories']['apple']['instances']['apple_red']['stamp'])
    broken['unlabelled']['categories']['tree'].append(good['categories']['hat']['instances']['tophat']['stamp'])
    broken['unlabelled']['categories']['shirt'] = ['clothes/t_pants.png']
    broken['categories']['scissors']['split'] = 'train'
    problems = '\n'.join(annotation_problems(broken))
    assert "['left_mirror'] are not in the category's list" in problems
    assert f"instance '{second}': split 'val' differs" in problems
    assert 'outside animals/' in problems
    assert f"'fruit': {car[first]['stamp']} is an annotated" in problems  # a test stamp
    assert "'nut': food/fruit/apple_red.png is an annotated" in problems  # a val stamp
    assert "'tree': clothes/hats/tophat.png is an annotated" in problems  # a labelled trn stamp
    assert "unlabelled 'shirt': named like an annotated category" in problems
    assert "category 'scissors': split must be one of ('test', 'val', 'trn'), got 'train'" in problems


@pytest.mark.skipif(not os.path.isdir(STAMPS_DIR), reason=f'no Tux Paint stamps at {STAMPS_DIR} '
                    '(set SFC_TUXPAINT_STAMPS to the stamps folder of tuxpaint-stamps-default)')
def test_annotated_keypoints_lie_on_their_stamps():
    for entry in load_annotations()['categories'].values():
        for record in entry['instances'].values():
            alpha = np.asarray(Image.open(os.path.join(STAMPS_DIR, record['stamp'])).convert('RGBA'))[..., 3]
            for name, point in record['keypoints'].items():
                if point is not None:
                    x, y = int(round(point[0])), int(round(point[1]))
                    assert 0 <= x < alpha.shape[1] and 0 <= y < alpha.shape[0], (record['stamp'], name)
                    assert alpha[y, x] > 0, (record['stamp'], name, point)


@pytest.mark.parametrize('background_size', [(160, 120), (70, 60)])  # the object enlarged, then shrunk
@pytest.mark.parametrize('flip', [False, True])
def test_composite_puts_each_keypoint_on_its_dot(background_size, flip):
    dots = {'nose': (48, 20), 'tail': (12, 22), 'top': (30, 11)}
    stamp = np.zeros((40, 60, 4), np.uint8)
    stamp[6:34, 6:54] = (BODY, BODY, BODY, 255)
    for name, (x, y) in dots.items():
        stamp[y - 3:y + 4, x - 3:x + 4, :3] = DOT_COLOURS[name]
    background = np.zeros((background_size[1], background_size[0], 3), np.uint8)
    for seed in range(3):
        view = composite(np.random.default_rng(seed), stamp, np.array(list(dots.values()), np.float64), background,
                         flip=flip)
        image = view['image'].astype(np.float64)
        assert view['flipped'] == flip and abs(view['angle']) <= 10
        affine = view['affine']  # (2, 3), stamp pixels -> image pixels
        np.testing.assert_allclose(np.array(list(dots.values())) @ affine[:, :2].T + affine[:, 2], view['keypoints'],
                                   atol=1e-9)
        assert np.sign(np.linalg.det(affine[:, :2])) == (-1 if flip else 1)
        for (name, colour), point in zip(((n, DOT_COLOURS[n]) for n in dots), view['keypoints']):
            channel = int(np.argmax(colour))
            others = [c for c in range(3) if colour[c] == 0]
            weight = np.clip(image[..., channel] - image[..., others].max(axis=-1) - 40, 0, None)
            ys, xs = np.nonzero(weight)
            centroid = np.array([(xs * weight[ys, xs]).sum(), (ys * weight[ys, xs]).sum()]) / weight[ys, xs].sum()
            np.testing.assert_allclose(centroid, point, atol=0.3, err_msg=f'{name}, seed {seed}')
        # flipped: the nose (right in the stamp) is left of the tail, up to the small rotation
        nose, tail = view['keypoints'][0], view['keypoints'][1]
        assert (nose[0] < tail[0]) == flip
        object_pixels = image.max(axis=-1) >= BODY / 2  # alpha >= 0.5 on a black background
        ys, xs = np.nonzero(object_pixels)
        np.testing.assert_allclose(view['box'], [xs.min(), ys.min(), xs.max(), ys.max()], atol=1)
        assert xs.min() >= 1 and ys.min() >= 1 and xs.max() <= background_size[0] - 2 and \
            ys.max() <= background_size[1] - 2  # fully inside
        side = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
        assert side <= 0.75 * max(background_size) + 2


def test_val_cap_keeps_the_most_different_pairs_and_is_seeded():
    instances = {f'i{k}': dict(stamp=f'x/i{k}.png', split='val', facing=None, keypoints={'a': [0, 0], 'b': [1, 1]})
                 for k in range(4)}  # 12 ordered pairs
    small = {f's{k}': dict(stamp=f'x/s{k}.png', split='val', facing=None, keypoints={'a': [0, 0], 'b': [1, 1]})
             for k in range(2)}  # 2 ordered pairs
    annotations = dict(categories=dict(
        big=dict(split='val', keypoints=['a', 'b'], flip_pairs=[], instances=instances),
        small=dict(split='val', keypoints=['a', 'b'], flip_pairs=[], instances=small)))

    def pairs(seed, cap, draws=3):
        plan = plan_pairs(annotations, 'val', seed, val_draws=draws, val_pairs_per_category=cap)
        return {name: [(p['src'], p['trg']) for p in plan if p['category'] == name] for name in ('big', 'small')}

    uncapped = pairs(0, None)
    assert len(uncapped['big']) == 12 * 3 and len(uncapped['small']) == 2 * 3
    for cap in (6, 12, 20):
        capped = pairs(0, cap)
        assert len(capped['big']) == cap and capped['small'] == uncapped['small']  # under the cap: untouched
        counts = {pair: capped['big'].count(pair) for pair in set(capped['big'])}
        assert len(counts) == min(cap, 12) and max(counts.values()) - min(counts.values()) <= 1
        assert capped['big'] == sorted(capped['big'], key=uncapped['big'].index)  # in the uncapped order
    assert pairs(0, 5) == pairs(0, 5) and pairs(0, 5) != pairs(1, 5)


def _pixel_colour(image: np.ndarray, point) -> np.ndarray:
    x, y = int(round(point[0])), int(round(point[1]))
    return image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)


def test_written_set_has_the_dots_under_its_keypoints_and_loads_as_spair(tmp_path):
    stamps = str(tmp_path / 'stamps')
    annotations = _synthetic_set(stamps)
    assert annotation_problems(annotations, stamps) == []
    meta = write_semantic_pairs(str(tmp_path / 'a'), stamps, seed=5, annotations=annotations, draws=1, max_side=128,
                                val_draws=1)
    assert {split: count['pairs'] for split, count in meta['splits'].items()} == {'test': 3 * 2 + 2, 'val': 2,
                                                                                  'trn': 2 + 2 * 3}
    assert meta['splits']['trn']['kinds'] == {'exact': 2 * 3, 'cross': 2} and meta['trn_exact_per_stamp'] == 3
    categories = annotations['categories']
    used = {}
    for split, expected in (('test', 8), ('val', 2)):
        dataset = SPair71kDataset(data_root=str(tmp_path / 'a'), split=split)
        assert len(dataset) == expected
        for sample in dataset:
            record = json.load(open(os.path.join(tmp_path, 'a', 'PairAnnotation', split, f'{sample["pair_id"]}.json')))
            entry = categories[record['category']]
            assert record['src_instance'] != record['trg_instance']
            used.setdefault(split, set()).update({record['src_stamp'], record['trg_stamp']})
            expected_names = [name for name in entry['keypoints']
                              if entry['instances'][record['src_instance']]['keypoints'][name] is not None
                              and entry['instances'][record['trg_instance']]['keypoints'][name] is not None]
            assert record['kps_names'] == expected_names and sample['valid'].all()
            for role in ('src', 'trg'):
                image = cv2.cvtColor(cv2.imread(sample[f'{role}_path']), cv2.COLOR_BGR2RGB).astype(np.float64)
                points = dict(zip(record['kps_names'], sample[f'{role}_kps']))
                swap = {'side_left': 'side_right', 'side_right': 'side_left'} if record[f'{role}_flipped'] else {}
                for name, point in points.items():  # names by image side: the side dots swap in a mirrored image
                    colour = np.array(DOT_COLOURS[swap.get(name, name) if entry['flip_pairs'] else name], np.float64)
                    assert np.abs(_pixel_colour(image, point) - colour).max() < 90, (record['category'], role, name)
                if entry['flip_pairs']:
                    assert points['side_left'][0] < points['side_right'][0]
                box = sample[f'{role}_bbox']
                inside = image[int(box[1]):int(box[3]) + 1, int(box[0]):int(box[2]) + 1]
                assert inside.shape[0] >= 20 and inside.shape[1] >= 20
            facings = [entry['instances'][record[f'{role}_instance']]['facing'] for role in ('src', 'trg')]
            if None in facings:
                assert record['mirrored'] is False and record['viewpoint_variation'] == 0
            else:
                written = [facing if not record[f'{role}_flipped'] else {'left': 'right', 'right': 'left'}[facing]
                           for facing, role in zip(facings, ('src', 'trg'))]
                assert record['mirrored'] == (written[0] != written[1])
                assert record['viewpoint_variation'] == (2 if record['mirrored'] else 0)
    trn_lines = open(os.path.join(tmp_path, 'a', 'Layout', 'large', 'trn.txt')).read().split()
    trn_records = [json.load(open(os.path.join(tmp_path, 'a', 'PairAnnotation', 'trn', f'{line}.json')))
                   for line in trn_lines]
    assert [record['kind'] for record in trn_records] == ['cross'] * 2 + ['exact'] * 6
    for record in trn_records:
        assert record['labelled'] is (record['kind'] == 'exact')
        assert (record['src_kps'] == [] and record['trg_kps'] == []) is (record['kind'] == 'cross')
    used['trn'] = {record[f'{role}_stamp'] for record in trn_records for role in ('src', 'trg')}
    assert not used['test'] & (used['val'] | used['trn']) and not used['val'] & used['trn']
    # the same seed writes the same files; another seed other images
    write_semantic_pairs(str(tmp_path / 'b'), stamps, seed=5, annotations=annotations, draws=1, max_side=128,
                         val_draws=1)
    write_semantic_pairs(str(tmp_path / 'c'), stamps, seed=6, annotations=annotations, draws=1, max_side=128,
                         val_draws=1)
    assert _files(str(tmp_path / 'a')) == _files(str(tmp_path / 'b'))
    assert _files(str(tmp_path / 'a')) != _files(str(tmp_path / 'c'))
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_semantic_pairs(str(tmp_path / 'a'), stamps, annotations=annotations)


@pytest.mark.slow
def test_tool_writes_the_set_and_names_a_missing_stamps_folder(tmp_path):
    stamps = str(tmp_path / 'stamps')
    annotation_path = tmp_path / 'keypoints.json'
    annotation_path.write_text(json.dumps(_synthetic_set(stamps)))
    command = [sys.executable, os.path.join(REPO_ROOT, 'tools', 'make_semantic_pairs.py'), '--annotations',
               str(annotation_path), '--out', str(tmp_path / 'out'), '--draws', '1', '--val-draws', '1',
               '--max-side', '96']
    done = subprocess.run(command + ['--stamps', stamps, '--keypoint-sheet', str(tmp_path / 'sheet.jpg'),
                                     '--examples', str(tmp_path / 'examples.jpg'), '--trn-examples',
                                     str(tmp_path / 'trn.jpg'), '--trn-exact-per-stamp', '2', '--class-folders',
                                     str(tmp_path / 'classes'), '--images-per-stamp', '2'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'test: 8 pairs' in done.stdout and 'val: 2 pairs' in done.stdout and 'trn: 6 pairs' in done.stdout
    assert '4 images in 1 class folders' in done.stdout
    assert sorted(os.listdir(tmp_path / 'classes' / 'thing')) == ['t1_0.jpg', 't1_1.jpg', 't2_0.jpg', 't2_1.jpg']
    for drawing in ('sheet.jpg', 'examples.jpg', 'trn.jpg'):
        assert cv2.imread(str(tmp_path / drawing)) is not None
    missing = subprocess.run(command + ['--stamps', str(tmp_path / 'nowhere'), '--overwrite'], capture_output=True,
                             text=True)
    assert missing.returncode == 1 and str(tmp_path / 'nowhere') in missing.stderr and 'w1.png' in missing.stderr


def _colours_at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) bilinear colours of an RGB image at x, y (N, 2)."""
    xs, ys = (points[:, i].astype(np.float32)[None] for i in (0, 1))
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR)[0].astype(np.float64)


def _read_rgb(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


def test_exact_trn_pairs_put_each_keypoint_on_its_stamp_pixel(tmp_path):
    stamps = str(tmp_path / 'stamps')
    annotations = _synthetic_set(stamps)
    root = str(tmp_path / 'set')
    write_semantic_pairs(root, stamps, seed=3, annotations=annotations, draws=1, val_draws=1, max_side=128,
                         trn_exact_per_stamp=4, trn_points=30)
    lines = open(os.path.join(root, 'Layout', 'large', 'trn.txt')).read().split()
    records = [json.load(open(os.path.join(root, 'PairAnnotation', 'trn', f'{line}.json'))) for line in lines]
    exact = [record for record in records if record['kind'] == 'exact']
    assert len(exact) == 2 * 4 and {record['src_stamp'] for record in exact} == {'other/t1.png', 'other/t2.png'}
    mirrored = []
    for record in exact:
        assert record['src_stamp'] == record['trg_stamp'] and record['category'] == 'thing'
        stamp = np.asarray(Image.open(os.path.join(stamps, record['src_stamp'])))
        stamp_points = np.array(record['stamp_kps'])  # (30, 2) pixel centres on the stamp
        assert len(stamp_points) == 30 and record['kps_ids'] == list(range(30))  # the object lies inside
        assert len({tuple(point) for point in stamp_points.tolist()}) == 30
        assert (stamp[stamp_points[:, 1].astype(int), stamp_points[:, 0].astype(int), 3] >= 128).all()
        # away from the matte's edge the composite's colour is the stamp's own (no background mixed in)
        opaque = cv2.erode((stamp[..., 3] == 255).astype(np.uint8), np.ones((5, 5), np.uint8))
        interior = opaque[stamp_points[:, 1].astype(int), stamp_points[:, 0].astype(int)] == 1
        assert interior.sum() >= 10
        expected = _gradient_colour(stamp_points[interior])
        for role in ('src', 'trg'):
            image = _read_rgb(os.path.join(root, 'JPEGImages', 'thing', record[f'{role}_imname']))
            points = np.array(record[f'{role}_kps'])
            error = np.abs(_colours_at(image, points[interior]) - expected).max(axis=1)
            assert error.max() < 12, (record['pair_id'], role, error.max())  # 4-5 levels a stamp pixel
            box = record[f'{role}_bndbox']
            assert (points >= np.array(box[:2]) - 1).all() and (points <= np.array(box[2:]) + 1).all()
            assert record[f'{role}_background'] in TRN_BACKGROUNDS
        assert np.abs(np.array(record['src_kps']) - np.array(record['trg_kps'])).max() > 1  # two draws
        assert record['mirrored'] == (record['src_flipped'] != record['trg_flipped'])
        assert record['viewpoint_variation'] == (2 if record['mirrored'] else 0)
        mirrored.append(record['mirrored'])
    assert True in mirrored and False in mirrored
    # the trn options change trn only: test and val are the same files
    write_semantic_pairs(str(tmp_path / 'other'), stamps, seed=3, annotations=annotations, draws=1, val_draws=1,
                         max_side=128, trn_exact_per_stamp=1, trn_points=5, trn_pairs_per_category=1)
    kept = {path: digest for path, digest in _files(root).items()
            if 'trn' not in path and path.endswith(('.jpg', '.json')) and path != 'meta.json'}
    assert len(kept) == 2 * (8 + 2) + 8 + 2  # two images and a pair file of every test and val pair
    assert kept.items() <= _files(str(tmp_path / 'other')).items()


def test_trn_pairs_load_only_when_unlabelled_pairs_are_allowed(tmp_path):
    stamps = str(tmp_path / 'stamps')
    root = str(tmp_path / 'set')
    write_semantic_pairs(root, stamps_dir=stamps, seed=1, annotations=_synthetic_set(stamps), draws=1, val_draws=1,
                         max_side=96, trn_exact_per_stamp=1, trn_points=8)
    lines = open(os.path.join(root, 'Layout', 'large', 'trn.txt')).read().split()
    with pytest.raises(PairDataError, match='allow_unlabelled=True') as error:
        SPair71kDataset(root, split='trn')
    assert f'{lines[0]}.json' in str(error.value)  # the first pair is a cross pair
    samples = list(SPair71kDataset(root, split='trn', allow_unlabelled=True))
    assert [sample['labelled'] for sample in samples] == [False, False, True, True]
    for sample in samples:
        record = json.load(open(os.path.join(root, 'PairAnnotation', 'trn', f'{sample["pair_id"]}.json')))
        assert sample['category'] == 'thing' and sample['src_kps'].shape == sample['trg_kps'].shape
        assert len(sample['src_kps']) == (8 if record['kind'] == 'exact' else 0)
        np.testing.assert_array_equal(sample['trg_bbox'], record['trg_bndbox'])
        assert sample.get('mirrored') == record['mirrored']  # null (cross: facing unknown) is left out
    # labelled splits: the same samples, with labelled=True when unlabelled pairs are allowed
    plain, allowing = SPair71kDataset(root, split='val'), SPair71kDataset(root, split='val', allow_unlabelled=True)
    for sample, other in zip(plain, allowing):
        assert 'labelled' not in sample and other.pop('labelled') is True
        assert sample.keys() == other.keys()
        np.testing.assert_array_equal(sample['src_kps'], other['src_kps'])


def test_trn_backgrounds_share_no_photo_with_the_report_sets():
    report = ({f'skimage:{name}' for name in SKIMAGE_BACKGROUNDS + pair_benchmark.PHOTOS + ('stereo_motorcycle',)}
              | {f'opencv-doc:{name}' for name in OPENCV_DOC_BACKGROUNDS + pair_benchmark.OPENCV_DOC_FILES})
    assert len(set(TRN_BACKGROUNDS)) == len(TRN_BACKGROUNDS) >= 8
    assert {name.split(':')[0] for name in TRN_BACKGROUNDS} == {'skimage', 'opencv-doc'}
    assert not set(TRN_BACKGROUNDS) & report
    assert not {name.split(':')[1] for name in TRN_BACKGROUNDS} & {name.split(':')[1] for name in report}


def test_class_folders_hold_single_composites_of_the_trn_stamps(tmp_path):
    stamps = str(tmp_path / 'stamps')
    annotations = _synthetic_set(stamps)
    out = str(tmp_path / 'classes')
    meta = write_class_folders(out, stamps, images_per_stamp=3, seed=2, annotations=annotations, max_side=96)
    expected = {f'thing/{stamp}_{k}.jpg' for stamp in ('t1', 't2') for k in range(3)}
    written = {os.path.relpath(os.path.join(folder, name), out) for folder, _, names in os.walk(out) for name in names}
    assert written == expected | {'meta.json'} and set(meta['images']) == expected
    assert json.load(open(os.path.join(out, 'meta.json'))) == meta
    assert meta['categories'] == {'thing': ['other/t1.png', 'other/t2.png']}
    for name, entry in meta['images'].items():
        image = _read_rgb(os.path.join(out, name))
        assert entry['stamp'] == f'other/{name.split("/")[1][:2]}.png' and entry['background'] in TRN_BACKGROUNDS
        assert list(image.shape[1::-1]) == entry['imsize'][:2] and max(image.shape[:2]) == 96
        # the recorded affine puts the stamp's opaque interior where the image shows its colours
        stamp = np.asarray(Image.open(os.path.join(stamps, entry['stamp'])))
        opaque = cv2.erode((stamp[..., 3] == 255).astype(np.uint8), np.ones((7, 7), np.uint8))
        ys, xs = np.nonzero(opaque)
        stamp_points = np.stack([xs, ys], axis=1)[::23].astype(np.float64)
        affine = np.array(entry['affine'])
        points = stamp_points @ affine[:, :2].T + affine[:, 2]
        assert np.abs(_colours_at(image, points) - _gradient_colour(stamp_points)).max() < 12, name
        box = entry['box']
        assert (points >= np.array(box[:2])).all() and (points <= np.array(box[2:])).all()
        assert np.sign(np.linalg.det(affine[:, :2])) == (-1 if entry['flipped'] else 1)
    write_class_folders(str(tmp_path / 'again'), stamps, images_per_stamp=3, seed=2, annotations=annotations,
                        max_side=96)
    assert _files(out) == _files(str(tmp_path / 'again'))  # seeded
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_class_folders(out, stamps, annotations=annotations)
    held_out = copy.deepcopy(annotations)
    held_out['unlabelled']['categories']['thing'].append('other/../animals/cats/cat.png')
    with pytest.raises(AnnotationError, match='animals/'):
        write_class_folders(str(tmp_path / 'animals'), stamps, annotations=held_out)
    assert not os.path.exists(tmp_path / 'animals')


def test_class_folders_on_noise_share_no_background(tmp_path):
    stamps = str(tmp_path / 'stamps')
    annotations = _synthetic_set(stamps)
    meta = write_class_folders(str(tmp_path / 'noise'), stamps, images_per_stamp=2, seed=2, annotations=annotations,
                               max_side=96, backgrounds='noise')
    assert meta['backgrounds'] == 'noise (one per image)'
    corners = []
    for name, entry in meta['images'].items():
        assert entry['background'] == 'noise'
        image = _read_rgb(str(tmp_path / 'noise' / name)).astype(np.float64)
        x1, y1, x2, y2 = (int(v) for v in entry['box'])
        outside = np.ones(image.shape[:2], bool)
        outside[max(0, y1 - 2):y2 + 3, max(0, x1 - 2):x2 + 3] = False
        corners.append(image[outside].mean(axis=0))
    # every image has its own background: no two mean background colours agree
    gaps = [np.abs(a - b).max() for i, a in enumerate(corners) for b in corners[i + 1:]]
    assert min(gaps) > 2
    with pytest.raises(ValueError, match="'photos' or 'noise'"):
        write_class_folders(str(tmp_path / 'bad'), stamps, annotations=annotations, backgrounds='plain')


def test_labelled_trn_categories_give_keypointed_cross_pairs_after_the_others(tmp_path):
    stamps = str(tmp_path / 'stamps')
    plain = _synthetic_set(stamps)
    annotations = copy.deepcopy(plain)
    # two trn categories drawn with dots: one facing a way, one with a flip pair
    for category, source in (('widget_trn', 'widget'), ('blob_trn', 'blob')):
        entry = copy.deepcopy(plain['categories'][source])
        entry['split'] = 'trn'
        entry['instances'] = {f'{name}t': dict(record, split='trn', stamp=record['stamp'].replace('.png', '_t.png'))
                              for name, record in list(entry['instances'].items())[:2]}
        for record in entry['instances'].values():
            _stamp(os.path.join(stamps, record['stamp']), (60, 40), (6, 6, 53, 33),
                   {name: point for name, point in record['keypoints'].items() if point})
        annotations['categories'][category] = entry
    assert annotation_problems(annotations, stamps) == []
    options = dict(seed=4, draws=1, val_draws=1, max_side=128, trn_exact_per_stamp=1, trn_points=6)
    write_semantic_pairs(str(tmp_path / 'plain'), stamps, annotations=plain, **options)
    root = str(tmp_path / 'set')
    meta = write_semantic_pairs(root, stamps, annotations=annotations, trn_labelled_draws=3, **options)
    assert meta['splits']['trn']['labelled_cross'] == 2 * 2 * 3 and meta['trn_labelled_draws'] == 3
    # test, val and the earlier trn pairs are the same files; the labelled pairs follow them
    before, after = _files(str(tmp_path / 'plain')), _files(root)
    changed = {path for path in before if after.get(path) != before[path]}
    assert changed == {'meta.json', 'README.txt', os.path.join('Layout', 'large', 'trn.txt')}
    plain_lines = open(os.path.join(tmp_path, 'plain', 'Layout', 'large', 'trn.txt')).read().split()
    lines = open(os.path.join(root, 'Layout', 'large', 'trn.txt')).read().split()
    assert lines[:len(plain_lines)] == plain_lines and len(lines) == len(plain_lines) + 12
    samples = {sample['pair_id']: sample for sample in SPair71kDataset(root, split='trn', allow_unlabelled=True)}
    mirrored = []
    for line in lines[len(plain_lines):]:
        record = json.load(open(os.path.join(root, 'PairAnnotation', 'trn', f'{line}.json')))
        entry = annotations['categories'][record['category']]
        assert record['kind'] == 'cross' and record['labelled'] is True
        assert record['src_instance'] != record['trg_instance'] and samples[line]['labelled']
        names = [name for name in entry['keypoints']
                 if entry['instances'][record['src_instance']]['keypoints'][name] is not None]
        assert record['kps_names'] == names and len(samples[line]['src_kps']) == len(names)
        for role in ('src', 'trg'):
            assert record[f'{role}_background'] in TRN_BACKGROUNDS
            image = _read_rgb(os.path.join(root, 'JPEGImages', record['category'], record[f'{role}_imname']))
            swap = {'side_left': 'side_right', 'side_right': 'side_left'} if record[f'{role}_flipped'] else {}
            for name, point in zip(names, record[f'{role}_kps']):  # image-side names swap in a mirror
                colour = np.array(DOT_COLOURS[swap.get(name, name)], np.float64)
                assert np.abs(_pixel_colour(image.astype(np.float64), point) - colour).max() < 90, (line, role, name)
        facings = [entry['instances'][record[f'{role}_instance']]['facing'] for role in ('src', 'trg')]
        if None in facings:
            assert record['mirrored'] is False
        else:
            written = [facing if not record[f'{role}_flipped'] else {'left': 'right', 'right': 'left'}[facing]
                       for facing, role in zip(facings, ('src', 'trg'))]
            assert record['mirrored'] == (written[0] != written[1])
            mirrored.append(record['mirrored'])
    assert len(mirrored) == 6
