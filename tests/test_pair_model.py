"""The pair model: flip-aware matching, the box-prior baseline, CATs' PCK protocol, PF-PASCAL's flipped pairs."""
import json

import cv2
import numpy as np
import pytest
import torch

from pair_fixtures import make_pfpascal, make_pfwillow, make_spair, spair_record, write_photo
from sfc_plugin.correspondence import (MATCHERS, PairMatchingModel, PairPCKMetric, PFPascalDataset,
                                       PFWillowDataset, SPair71kDataset)

TINY_BACKBONE = dict(type='SFCBackbone', fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3))


def _model(**kwargs) -> PairMatchingModel:
    torch.manual_seed(0)
    return PairMatchingModel(backbone=TINY_BACKBONE, **kwargs).eval()


@pytest.fixture(scope='module')
def mirror_pair(tmp_path_factory):
    """A photo (64 x 96) and its exact left-right mirror; keypoints on cell centres, the truth mirrored."""
    folder = tmp_path_factory.mktemp('mirror')
    source = write_photo(str(folder / 'a.png'), 'chelsea', size=(64, 96))
    target = str(folder / 'b.png')
    cv2.imwrite(target, cv2.imread(source)[:, ::-1])
    xs, ys = np.meshgrid(np.arange(1, 11, 2) * 8 + 3.5, np.arange(1, 7, 2) * 8 + 3.5)
    src_kps = np.stack([xs.ravel(), ys.ravel()], axis=1)
    trg_kps = np.stack([95 - src_kps[:, 0], src_kps[:, 1]], axis=1)
    return dict(pair_id='cat-mirror', category='cat', src_path=source, trg_path=target, src_kps=src_kps,
                trg_kps=trg_kps, valid=np.ones(len(src_kps), bool), src_bbox=np.array([8.0, 4, 80, 60]),
                trg_bbox=np.array([15.0, 4, 87, 60]), pck_sizes=dict(bbox=72.0))


@pytest.mark.parametrize('method', MATCHERS)
def test_flip_auto_matches_a_mirrored_target_perfectly(mirror_pair, method, tmp_path):
    settings = dict(method=method, softmax_temperature=0.002) if method == 'soft_argmax' else dict(method=method)
    plain = _model(matcher=settings).match_pair(mirror_pair)
    aware = _model(matcher=settings, flip='auto', out_dir=str(tmp_path)).match_pair(mirror_pair)
    error = np.linalg.norm(aware['pred_kps'] - mirror_pair['trg_kps'], axis=1)
    assert aware['target_mirrored'] and aware['orientation_scores'][1] > aware['orientation_scores'][0]
    assert error.max() < (1.0 if method.endswith('soft_argmax') else 1e-6), error
    plain_error = np.linalg.norm(plain['pred_kps'] - mirror_pair['trg_kps'], axis=1)  # NaN: declined
    assert not plain['target_mirrored'] and np.mean(plain_error <= 7.2) < 0.5  # PCK@0.1 of the box
    record = json.load(open(tmp_path / 'cat-mirror.json'))
    assert record['target_mirrored'] is True and record['flip'] == 'auto' and len(record['orientation_scores']) == 2


def test_soft_box_prior_follows_the_mirrored_target(mirror_pair):
    # The target box is the mirror of the source box; matched mirrored, the prior must be mirrored too.
    result = _model(matcher=dict(method='nn', box_prior_sigma=0.05), flip='auto').match_pair(mirror_pair)
    assert result['target_mirrored']
    np.testing.assert_allclose(result['pred_kps'], mirror_pair['trg_kps'], atol=1e-6)


def test_box_prior_annotated_facing_by_hand(tmp_path):
    root = str(tmp_path / 'spair')
    src_kps, trg_kps = [[10.0, 20.0], [30.0, 40.0]], [[0.0, 0.0], [0.0, 0.0]]
    make_spair(root, [dict(spair_record('s', 't', 'dog', src_kps, trg_kps, [10, 20, 50, 40], [0, 5, 20, 45]),
                           mirrored=1),
                      spair_record('s', 't', 'dog', src_kps, trg_kps, [10, 20, 50, 40], [0, 5, 20, 45])])
    mirrored, facing = SPair71kDataset(root)
    model = _model(matcher=dict(method='box_prior'), flip='annotated')
    # Relative positions (0, 0) and (0.5, 1) in the source box; the target box is 20 x 40 from (0, 5).
    np.testing.assert_allclose(model.match_pair(facing)['pred_kps'], [[0, 5], [10, 45]])
    result = model.match_pair(mirrored)
    np.testing.assert_allclose(result['pred_kps'], [[20, 5], [10, 45]])  # x relative 0 -> 1
    assert result['target_mirrored'] and np.isnan(result['scores']).all()
    model.set_matching(dict(method='box_prior'), 'off')  # never mirrored
    np.testing.assert_allclose(model.match_pair(mirrored)['pred_kps'], [[0, 5], [10, 45]])
    with pytest.raises(ValueError, match='flip must be one of off, annotated, auto'):
        model.set_matching(dict(method='box_prior'), 'sometimes')


def test_box_prior_facing_from_features(mirror_pair):
    result = _model(matcher=dict(method='box_prior'), flip='auto').match_pair(mirror_pair)
    assert result['target_mirrored']
    relative = (mirror_pair['src_kps'] - [8, 4]) / [72, 56]
    expected = np.stack([15 + (1 - relative[:, 0]) * 72, 4 + relative[:, 1] * 56], axis=1)
    np.testing.assert_allclose(result['pred_kps'], expected, atol=1e-9)


def test_box_prior_without_boxes_names_the_pair(tmp_path):
    kps = np.ones((10, 2)) * 5
    make_pfwillow(str(tmp_path), [('PF-dataset/duck(S)/a.png', 'PF-dataset/duck(S)/b.png', kps, kps)])
    sample = PFWillowDataset(str(tmp_path))[0]
    with pytest.raises(ValueError, match=r'pair duck\(S\)-a-b: the box prior needs the object boxes'):
        _model(matcher=dict(method='box_prior')).match_pair(sample)
    with pytest.raises(ValueError, match=r'pair duck\(S\)-a-b: the box prior needs'):
        _model(matcher=dict(method='nn', box_prior_sigma=0.1)).match_pair(sample)


def test_cats_protocol_on_a_hand_made_pair(tmp_path):
    source = write_photo(str(tmp_path / 's.jpg'), 'coffee', size=(48, 64))  # H 48, W 64
    target = write_photo(str(tmp_path / 't.jpg'), 'rocket', size=(80, 40))
    sample = dict(pair_id='p', category='c', src_path=source, trg_path=target,
                  src_kps=np.array([[4.0, 8], [44, 40], [30, 24]]), trg_kps=np.array([[5.0, 10], [35, 70], [20, 40]]),
                  valid=np.ones(3, bool), src_bbox=np.array([4.0, 8, 44, 40]), trg_bbox=np.array([5.0, 10, 35, 70]),
                  pck_sizes=dict(bbox=60.0))
    with pytest.raises(ValueError, match='set max_side=None'):
        _model(protocol='cats', max_side=320)
    model = _model(matcher=dict(method='box_prior'), protocol='cats', out_dir=str(tmp_path / 'out'))
    assert model.extractor.input_size == (256, 256)
    result = model.match_pair(sample)
    # Target keypoints at relative (0, 0), (1, 1), (0.5, 0.5) of the target box -> (4, 8), (44, 40), (24, 24)
    # in the source, then x * 256 / 64, y * 256 / 48; the truth is the source keypoints, scaled alike.
    np.testing.assert_allclose(result['pred_kps'], [[16, 8 * 16 / 3], [176, 40 * 16 / 3], [96, 128]])
    np.testing.assert_allclose(result['trg_kps'], [[16, 8 * 16 / 3], [176, 40 * 16 / 3], [120, 128]])
    assert result['pck_sizes']['bbox'] == pytest.approx(32 * 16 / 3)  # max(40 * 4, 32 * 16 / 3): source box
    assert result['pck_sizes']['image'] == 256
    metric = PairPCKMetric(alphas=(0.1, 0.15), reference='bbox')
    metric.process(None, [result])
    scores = metric.compute_metrics(metric.results)
    # The third keypoint is 24 pixels off: out at 0.1 (17.07), in at 0.15 (25.6).
    assert scores['PCK@0.1'] == pytest.approx(200 / 3) and scores['PCK@0.15'] == pytest.approx(100)
    record = json.load(open(tmp_path / 'out' / 'p.json'))
    assert record['protocol'] == 'cats' and record['pred_src_kps'][2] == [96, 128]
    assert record['src_kps'][2] == [120, 128]
    hpf = _model(matcher=dict(method='box_prior')).match_pair(sample)  # source -> target, target pixels
    # (30, 24) is at relative (26 / 40, 16 / 32) of the source box -> (5 + 0.65 * 30, 10 + 0.5 * 60).
    np.testing.assert_allclose(hpf['pred_kps'], [[5, 10], [35, 70], [24.5, 40]])
    assert hpf['pck_sizes']['bbox'] == 60


def test_flipped_pfpascal_pair_reads_mirrored_images(tmp_path):
    kps = [[12.5, 12.5], [36.5, 20.5], [52.5, 44.5]]  # 1-based: cell centres 11.5, 35.5, 51.5 (0-based)
    make_pfpascal(str(tmp_path / 'pf'), [('a', 'b', 8, 1)],
                  {'a': ('cat', kps, [1, 1, 60, 40]), 'b': ('cat', kps, [2, 2, 50, 45])}, split='trn')
    write_photo(str(tmp_path / 'pf' / 'JPEGImages' / 'b.jpg'), 'coffee')
    sample = PFPascalDataset(str(tmp_path / 'pf'), split='trn')[0]
    mirrored = {}
    for name in ('a', 'b'):  # the images a loader that flips would give, written out
        mirrored[name] = str(tmp_path / f'{name}_mirrored.png')
        cv2.imwrite(mirrored[name], cv2.imread(str(tmp_path / 'pf' / 'JPEGImages' / f'{name}.jpg'))[:, ::-1])
    by_hand = dict(sample, src_path=mirrored['a'], trg_path=mirrored['b'], flip=False)
    result, expected = _model().match_pair(sample), _model().match_pair(by_hand)
    np.testing.assert_array_equal(result['pred_kps'], expected['pred_kps'])
    unflipped = _model().match_pair(dict(sample, flip=False))
    assert not np.array_equal(unflipped['pred_kps'], expected['pred_kps'])


def test_flip_margin_keeps_the_target_unless_its_mirror_agrees_clearly_better(mirror_pair):
    plain, mirrored = _model(flip='auto').match_pair(mirror_pair)['orientation_scores']
    gap = mirrored - plain
    assert gap > 0
    assert _model(flip='auto', flip_margin=gap * 0.9).match_pair(mirror_pair)['target_mirrored']
    kept = _model(flip='auto', flip_margin=gap * 1.1).match_pair(mirror_pair)
    assert not kept['target_mirrored'] and kept['orientation_scores'] == pytest.approx((plain, mirrored))


def test_transfer_is_the_core_of_match_pair(mirror_pair):
    model = _model(matcher=dict(method='nn'), flip='auto')
    result = model.match_pair(mirror_pair)
    source, target = model.features(mirror_pair['src_path']), model.features(mirror_pair['trg_path'])
    transfer = model.transfer(source, target, lambda: model.features(mirror_pair['trg_path'], True),
                              mirror_pair['src_kps'], mirror_pair['src_bbox'], mirror_pair['trg_bbox'])
    np.testing.assert_array_equal(transfer.points, result['pred_kps'])
    assert transfer.target_mirrored and transfer.orientation_scores == result['orientation_scores']
    with pytest.raises(ValueError, match='the box prior needs the object boxes'):
        _model(matcher=dict(method='box_prior')).transfer(source, target, lambda: target, mirror_pair['src_kps'])
