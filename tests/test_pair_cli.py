"""sfc-match on real photos: the JSON and the picture, and one clear error per bad input."""
import json
import os

import cv2
import numpy as np
import pytest

from sfc_plugin.correspondence.cli import main

TINY_CONFIG = """
model = dict(backbone=dict(type='SFCBackbone',
                           fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)))
"""


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    config = folder / 'tiny.py'
    config.write_text(TINY_CONFIG)
    from skimage import data
    left, right, _ = data.stereo_motorcycle()  # two real photos of one scene (a stereo pair)
    paths = {}
    for key, image, size, name in (('a', left, (90, 120), 'left.jpg'), ('b', right, (100, 140), 'right.png')):
        paths[key] = str(folder / name)
        cv2.imwrite(paths[key], cv2.cvtColor(cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA),
                                             cv2.COLOR_RGB2BGR))
    return dict(paths, config=str(config), folder=folder)


def test_points_with_the_default_model(photos, tmp_path, capsys):
    out = str(tmp_path / 'out')
    assert main([photos['a'], photos['b'], '--points', '10,20', '60.5,45', '--out', out, '--no-progress']) == 0
    record = json.load(open(os.path.join(out, 'matches.json')))
    assert record['size_a'] == [120, 90] and record['size_b'] == [140, 100]
    assert [match['a'] for match in record['matches']] == [[10.0, 20.0], [60.5, 45.0]]
    for match in record['matches']:
        x, y = match['b']
        assert 0 <= x <= 139 and 0 <= y <= 99 and np.isfinite(match['score'])
    picture = cv2.imread(os.path.join(out, 'matches.png'))
    assert picture.shape == (100, 260, 3)
    assert '2 of 2 points matched' in capsys.readouterr().out
    # The built-in model is the semantic pair model, with the settings of its config.
    assert record['model']['config'].endswith('semantic_pair_model.py')
    assert record['matcher']['method'] == 'kernel_soft_argmax' and record['flip'] == 'auto'
    assert record['model']['max_side'] == 400 and record['model']['layers'] == ['semantic._blocks.10',
                                                                                 'semantic._blocks.12']
    assert len(record['orientation_scores']) == 2


def test_options_override_the_config_and_boxes_are_refused(photos, tmp_path, capsys):
    out = str(tmp_path / 'out')
    assert main([photos['a'], photos['b'], '--points', '10,20', '--out', out, '--no-progress', '--config',
                 photos['config'], '--matcher', 'nn', '--max-side', '64']) == 0
    record = json.load(open(os.path.join(out, 'matches.json')))
    assert record['matcher']['method'] == 'nn' and record['model']['max_side'] == 64 and record['flip'] == 'off'
    pair_config = tmp_path / 'pair.py'
    pair_config.write_text(TINY_CONFIG + "model.update(type='PairMatchingModel', max_side=64, "
                                          "matcher=dict(method='box_prior'))\n")
    assert main([photos['a'], photos['b'], '--out', out, '--no-progress', '--config', str(pair_config)]) == 1
    assert 'must use features only' in capsys.readouterr().err


@pytest.mark.parametrize('matcher', ['nn', 'mutual_nn', 'soft_argmax', 'kernel_soft_argmax'])
def test_grid_with_a_config(photos, tmp_path, matcher):
    out = str(tmp_path / matcher)
    assert main([photos['a'], photos['b'], '--config', photos['config'], '--matcher', matcher, '--grid-step', '30',
                 '--out', out, '--no-progress']) == 0
    record = json.load(open(os.path.join(out, 'matches.json')))
    assert len(record['matches']) == 3 * 4 and record['matcher']['method'] == matcher
    assert sorted(os.listdir(out)) == ['matches.json', 'matches.png']  # nothing temporary left


def test_flip_auto_matches_a_mirrored_image(photos, tmp_path):
    mirrored = str(tmp_path / 'mirrored.png')
    cv2.imwrite(mirrored, cv2.imread(photos['a'])[:, ::-1])  # 120 x 90
    points = ['11.5,19.5', '59.5,43.5', '99.5,75.5']  # cell centres at stride 8
    out = str(tmp_path / 'flip')
    assert main([photos['a'], mirrored, '--config', photos['config'], '--matcher', 'nn', '--flip', 'auto',
                 '--max-side', '120', '--points', *points, '--out', out, '--no-progress']) == 0
    record = json.load(open(os.path.join(out, 'matches.json')))
    assert record['b_mirrored'] is True and record['flip'] == 'auto'
    assert [match['b'] for match in record['matches']] == [[119 - 11.5, 19.5], [119 - 59.5, 43.5], [119 - 99.5, 75.5]]


def _bad_inputs(folder):
    corrupt = folder / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8 not really a jpeg')
    gray = str(folder / 'gray.png')
    cv2.imwrite(gray, np.full((64, 64), 128, np.uint8))
    tiny = str(folder / 'tiny.png')
    cv2.imwrite(tiny, np.zeros((20, 64, 3), np.uint8))
    return corrupt, gray, tiny


def test_bad_inputs_one_clear_error_each(photos, tmp_path, capsys):
    corrupt, gray, tiny = _bad_inputs(photos['folder'])
    cases = [
        ([str(photos['folder'] / 'missing.jpg'), photos['b']], 'missing.jpg: no such image file'),
        ([photos['a'], str(corrupt)], 'corrupt.jpg: cannot decode the image'),
        ([gray, photos['b']], 'gray.png: grayscale image'),
        ([photos['a'], tiny], 'tiny.png: 64x20 pixels is too small'),
        ([photos['a'], photos['b'], '--points', '120,5'], '--points 120,5: outside'),
        ([photos['a'], photos['b'], '--points', '3;4'], "--points '3;4': expected X,Y"),
        ([photos['a'], photos['b'], '--config', str(photos['folder'] / 'nope.py')], 'nope.py: no such config file'),
    ]
    for argv, message in cases:
        assert main(argv + ['--config', photos['config']] * ('--config' not in argv) +
                    ['--out', str(tmp_path / 'out'), '--no-progress']) == 1
        err = capsys.readouterr().err
        assert err.count('sfc-match: error:') == 1 and message in err, (message, err)
    assert not os.path.exists(tmp_path / 'out' / 'matches.json')
