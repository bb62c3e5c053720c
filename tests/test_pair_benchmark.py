"""The real-pair benchmark generator: exact correspondences, the SPair-71k layout, optional opencv-doc source."""
import json
import os

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT
from sfc_plugin.correspondence import SPair71kDataset
from sfc_plugin.generators.pair_benchmark import (ThinPlateSpline, build_pairs, check_opencv_doc,
                                                      write_benchmark)


def _ncc(a, b, points_a, points_b, side=9):
    """Mean normalised cross-correlation of gray patches around corresponding points."""
    values = []
    for (xa, ya), (xb, yb) in zip(points_a, points_b):
        pa = cv2.getRectSubPix(a, (side, side), (float(xa), float(ya))).astype(np.float64)
        pb = cv2.getRectSubPix(b, (side, side), (float(xb), float(yb))).astype(np.float64)
        pa, pb = pa - pa.mean(), pb - pb.mean()
        values.append((pa * pb).sum() / (np.linalg.norm(pa) * np.linalg.norm(pb) + 1e-9))
    return float(np.mean(values))


def test_tps_interpolates_its_control_points():
    rng = np.random.default_rng(0)
    control, values = rng.uniform(0, 100, (9, 2)), rng.uniform(0, 100, (9, 2))
    np.testing.assert_allclose(ThinPlateSpline(control, values)(control), values, atol=1e-8)


def test_pairs_have_exact_correspondences_and_load_as_spair(tmp_path):
    pairs = build_pairs(seed=3, max_side=160, warps_per_photo=1, keypoints=12, photos=['astronaut', 'coffee'])
    assert [pair['category'] for pair in pairs] == ['astronaut'] * 2 + ['coffee'] * 2 + ['stereo_motorcycle']
    out = write_benchmark(str(tmp_path / 'bench'), pairs, dict(seed=3))
    dataset = SPair71kDataset(out)
    assert len(dataset) == len(pairs)
    for index, pair in enumerate(pairs):
        sample = dataset[index]
        assert len(sample['src_kps']) >= 8 and sample['valid'].all()
        source = cv2.imread(sample['src_path'], cv2.IMREAD_GRAYSCALE)
        target = cv2.imread(sample['trg_path'], cv2.IMREAD_GRAYSCALE)
        shifted = sample['trg_kps'] + np.array([5.0, 0.0])
        assert _ncc(source, target, sample['src_kps'], sample['trg_kps']) > 0.6
        assert _ncc(source, target, sample['src_kps'], sample['trg_kps']) > _ncc(source, target, sample['src_kps'],
                                                                                shifted) + 0.3
        assert sample['pck_sizes']['bbox'] > 100
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_benchmark(out, pairs, {})
    again = build_pairs(seed=3, max_side=160, warps_per_photo=1, keypoints=12, photos=['astronaut', 'coffee'])
    np.testing.assert_array_equal(again[1]['trg_kps'], pairs[1]['trg_kps'])  # a seed reproduces the pairs
    meta = json.load(open(os.path.join(out, 'meta.json')))
    assert meta['pairs'] == len(pairs) and 'stereo_motorcycle' in meta['categories']


def test_missing_opencv_doc_is_a_clear_error(tmp_path):
    (tmp_path / 'graf1.png').write_bytes(b'')
    with pytest.raises(FileNotFoundError) as error:
        check_opencv_doc(str(tmp_path))
    assert str(tmp_path) in str(error.value) and 'graf3.png' in str(error.value) and 'opencv-doc' in str(error.value)


def test_benchmark_rows_equal_the_evaluation_model_and_metric(tmp_path):
    import torch
    from mmengine.config import Config

    from sfc_plugin.correspondence import PairMatchingModel, PairPCKMetric
    from sfc_plugin.benchmarks.pairs import benchmark_pairs
    root = write_benchmark(str(tmp_path / 'bench'), build_pairs(max_side=96, warps_per_photo=1, keypoints=6,
                                                                photos=['coffee']), {})
    config = tmp_path / 'tiny.py'
    config.write_text(
        f"_base_ = [{os.path.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'pair_benchmark.py')!r}]\n"
        "model = dict(type='PairMatchingModel', max_side=96, backbone=dict(type='SFCBackbone', fine_grained=dict(\n"
        "    type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)))\n")
    config = os.path.abspath(str(config))
    rows = benchmark_pairs([config], ['nn', 'ot_rhm'], data_root=root, groups={'real pairs': ['stereo_motorcycle']})
    assert [row['matcher'] for row in rows] == ['nn', 'ot_rhm'] and rows[0]['pairs'] == 3
    for row in rows:
        torch.manual_seed(0)
        model = PairMatchingModel(backbone=Config.fromfile(config).model.backbone, matcher=dict(method=row['matcher']),
                                  max_side=96).eval()
        metric = PairPCKMetric()
        metric.process(None, model.test_step(list(SPair71kDataset(root))))
        assert row['all'] == pytest.approx({key: value for key, value in metric.compute_metrics(metric.results).items()
                                            if key in ('PCK@0.05', 'PCK@0.1', 'PCK@0.15')})
        assert set(row) >= {'real pairs', 'feature_seconds', 'match_seconds'}
