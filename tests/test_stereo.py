"""Stereo matching PCK (``sfc_plugin.correspondence.stereo``) against a loop implementation, on exactly
shifted pixels, and its input checks; the stereo mode of ``tools/benchmark_pairs.py``."""
import importlib.util
import json
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO_ROOT
from sfc_plugin.apis.inference import build_model
from sfc_plugin.benchmarks.results import render_markdown
from sfc_plugin.correspondence.stereo import stereo_keypoints, stereo_pck


def stereo_pck_loops(features_left, features_right, height, width, disparity, thresholds, step):
    """stereo_pck for stride-1 or stride-2 feature maps, written with explicit loops: a left point's
    feature is interpolated from the L2-normalised cells around it (as every pair matcher samples)."""
    channels, map_height, map_width = features_left.shape
    features_left = features_left / np.sqrt((features_left ** 2).sum(axis=0, keepdims=True))
    stride_y, stride_x = height / map_height, width / map_width
    hits = {threshold: 0 for threshold in thresholds}
    count = 0
    for y in range(step // 2, height, step):
        for x in range(step // 2, width, step):
            d = disparity[y, x]
            if not np.isfinite(d) or d < 0 or x - d < 0:
                continue
            count += 1
            # bilinear sample at the pixel centre, clamped at the border
            fx = min(max((x + 0.5) / stride_x - 0.5, 0), map_width - 1)
            fy = min(max((y + 0.5) / stride_y - 0.5, 0), map_height - 1)
            x0, y0 = int(math.floor(fx)), int(math.floor(fy))
            x1, y1 = min(x0 + 1, map_width - 1), min(y0 + 1, map_height - 1)
            ax, ay = fx - x0, fy - y0
            query = [(1 - ay) * ((1 - ax) * features_left[c, y0, x0] + ax * features_left[c, y0, x1])
                     + ay * ((1 - ax) * features_left[c, y1, x0] + ax * features_left[c, y1, x1])
                     for c in range(channels)]
            best, best_cell = -2.0, None
            for i in range(map_height):
                for j in range(map_width):
                    key = [features_right[c, i, j] for c in range(channels)]
                    cosine = (sum(q * k for q, k in zip(query, key))
                              / math.sqrt(sum(q * q for q in query) * sum(k * k for k in key)))
                    if cosine > best:
                        best, best_cell = cosine, (i, j)
            px = (best_cell[1] + 0.5) * stride_x - 0.5
            py = (best_cell[0] + 0.5) * stride_y - 0.5
            error = math.hypot(px - (x - d), py - y)
            for threshold in thresholds:
                hits[threshold] += error <= threshold
    return {threshold: hits[threshold] / count for threshold in thresholds}


@pytest.mark.parametrize('stride', [1, 2])
def test_stereo_pck_matches_a_loop_implementation(stride):
    rng = np.random.default_rng(0)
    height, width = 12, 16
    left = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    disparity = rng.uniform(0, 6, (height, width))
    disparity[0, :5] = np.inf  # unknown
    projection = torch.from_numpy(rng.normal(size=(5, 3, 1, 1))).float()

    def backbone_fn(images):
        return F.avg_pool2d(F.conv2d(images - 0.5, projection), stride)

    result = stereo_pck(backbone_fn, left, right, disparity, thresholds=(1, 3, 6), grid_step=2)
    as_features = [backbone_fn(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)[0].numpy()
                   for image in (left, right)]
    expected = stereo_pck_loops(*as_features, height, width, disparity, (1, 3, 6), step=2)
    assert result == pytest.approx(expected)


def test_stereo_pck_is_one_for_exact_shifted_pixels():
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    left, right = scene[:, 2:32], scene[:, 5:35]  # left (x, y) = right (x - 3, y)
    disparity = np.full(left.shape[:2], 3.0)
    result = stereo_pck(lambda images: images, left, right, disparity, thresholds=(0.5,), grid_step=4)
    assert result == {0.5: 1.0}
    shifted_wrongly = np.full(left.shape[:2], 5.0)
    assert stereo_pck(lambda images: images, left, right, shifted_wrongly, (0.5,), 4) == {0.5: 0.0}


def test_stereo_pck_rejects_bad_input():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='disparity'):
        stereo_pck(lambda images: images, image, image, np.zeros((8, 9)))
    with pytest.raises(ValueError, match='no grid point'):
        stereo_pck(lambda images: images, image, image, np.full((8, 8), np.inf))


def test_stereo_keypoints_are_the_grid_points_whose_match_is_known_and_inside():
    disparity = np.full((4, 6), 1.0)
    disparity[1, 1] = np.nan  # unknown
    disparity[3, 3] = 5.0  # 3 - 5 < 0: left of the right image
    left, right = stereo_keypoints(disparity, grid_step=2)  # the grid: x in 1, 3, 5 and y in 1, 3
    assert left.tolist() == [[3, 1], [5, 1], [1, 3], [5, 3]]
    assert right.tolist() == [[2, 1], [4, 1], [0, 3], [4, 3]]


def load_benchmark_pairs_tool():
    spec = importlib.util.spec_from_file_location('benchmark_pairs_tool',
                                                  os.path.join(REPO_ROOT, 'tools', 'benchmark_pairs.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_tool_stereo_mode_reports_stereo_pck_per_config(tmp_path, monkeypatch, capsys):
    from skimage import data
    rng = np.random.default_rng(2)
    scene = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)
    pair = scene[:, 4:68], scene[:, 8:72], np.full((48, 64), 4.0)  # left (x, y) = right (x - 4, y)
    monkeypatch.setattr(data, 'stereo_motorcycle', lambda: pair)
    config = os.path.join(REPO_ROOT, 'configs', 'vos_benchmark', 'r18-random_vosbench.py')
    monkeypatch.setattr(sys, 'argv', ['benchmark_pairs.py', '--stereo', config, '--thresholds', '2', '8',
                                      '--json', str(tmp_path / 'stereo.json')])
    assert load_benchmark_pairs_tool().main() == 0
    record = json.loads((tmp_path / 'stereo.json').read_text())
    assert render_markdown(record) in capsys.readouterr().out
    torch.manual_seed(0)
    model, _ = build_model(config)
    expected = stereo_pck(model.backbone, *pair, thresholds=(2, 8))
    assert record['rows'] == [{'config': config, 'PCK@2px': round(100 * expected[2], 2),
                               'PCK@8px': round(100 * expected[8], 2)}]
    assert [key for key, _ in record['columns']] == ['config', 'PCK@2px', 'PCK@8px']


@pytest.mark.parametrize('argv, message', [(['--stereo', 'x.py', '--matchers', 'ot_rhm'], '--matchers'),
                                           (['x.py', '--thresholds', '4'], '--thresholds')])
def test_benchmark_tool_rejects_options_of_the_other_mode(argv, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['benchmark_pairs.py'] + argv)
    with pytest.raises(SystemExit):
        load_benchmark_pairs_tool().main()
    assert message in capsys.readouterr().err
