"""tools/test.py on image pairs: a tiny SPair-71k and PF-PASCAL, PCK recomputed from the written JSON."""
import glob
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, run_torchrun
from pair_fixtures import make_pfpascal, make_spair, spair_record

# A random ResNet-18 cut after layer3 (stride 8): fast, and matching still works on identical images.
TINY_MODEL = """
model = dict(
    type='PairMatchingModel',
    backbone=dict(type='SFCBackbone', fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
    matcher=dict(method='nn'),
)
"""


def _config(tmp_path, dataset_base: str, data_root: str) -> str:
    base = os.path.join(REPO_ROOT, 'configs', '_base_')
    path = tmp_path / 'config.py'
    path.write_text(f"_base_ = [{os.path.join(base, 'datasets', dataset_base)!r}, "
                    f"{os.path.join(base, 'pair_runtime.py')!r}]\n{TINY_MODEL}\n"
                    f"test_dataloader = dict(num_workers=0, dataset=dict(data_root={data_root!r}))\n")
    return str(path)


def _pck_from_json(out_dir: str, alpha: float, reference: str) -> float:
    """Per-pair PCK in percent from the written files alone (native coordinates cancel out)."""
    per_pair = []
    for path in glob.glob(os.path.join(out_dir, '*.json')):
        record = json.load(open(path))
        hits = [pred is not None and math.dist(pred, gt) <= alpha * record['pck_sizes'][reference]
                for pred, gt, ok in zip(record['pred_trg_kps'], record['trg_kps'], record['valid']) if ok]
        per_pair.append(sum(hits) / len(hits))
    return 100 * float(np.mean(per_pair))


@pytest.mark.slow
def test_spair_layout_end_to_end(tmp_path):
    root = str(tmp_path / 'SPair-71k')
    kps = [[11.5, 11.5], [27.5, 19.5], [51.5, 35.5]]  # cell centres at stride 8: their own features
    make_spair(root, [
        spair_record('img_a', 'img_a', 'cat', kps, kps, [0, 0, 63, 47], [0, 0, 63, 47]),  # the same image: exact
        spair_record('img_a', 'img_b', 'cat', kps, [[60.0, 2.0], [1.0, 40.0], [20.0, 20.0]], [0, 0, 63, 47],
                     [0, 0, 10, 12], flags=(1, 2, 0, 3)),
    ])
    out_dir = str(tmp_path / 'pred')
    result = subprocess.run([sys.executable, 'tools/test.py', _config(tmp_path, 'spair71k_test.py', root),
                             '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'PCK by difficulty' in log and 'scale_variation=large' in log
    assert sorted(os.listdir(out_dir)) == ['000001-img_a-img_a:cat.json', '000002-img_a-img_b:cat.json']
    first = json.load(open(os.path.join(out_dir, '000001-img_a-img_a:cat.json')))
    assert first['coordinate_origin'] == 0 and first['pred_trg_kps'] == kps  # the same image: its own cells
    for alpha in (0.05, 0.1, 0.15):
        printed = float(re.search(rf'PCK@{alpha:g}: ([0-9.]+)', log).group(1))
        assert printed == pytest.approx(_pck_from_json(out_dir, alpha, 'bbox'), abs=1e-3)


@pytest.mark.slow
def test_pfpascal_image_and_box_references(tmp_path):
    root = str(tmp_path / 'PF-PASCAL')
    make_pfpascal(root, [('a', 'a', 8), ('a', 'b', 8)],
                  {'a': ('cat', [[5, 5], [30, 20], [np.nan, np.nan]], [1, 1, 60, 40]),
                   'b': ('cat', [[50, 5], [10, 40], [3, 3]], [2, 2, 12, 12])})
    out_dir = str(tmp_path / 'pred')
    result = subprocess.run([sys.executable, 'tools/test.py', _config(tmp_path, 'pfpascal_test.py', root),
                             '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    record = json.load(open(os.path.join(out_dir, 'a-a.json')))
    assert record['coordinate_origin'] == 1 and record['trg_kps'][0] == [5.0, 5.0]  # written 1-based, as the .mat
    assert record['pck_sizes']['image'] == 64 and record['valid'] == [True, True, False]
    for reference in ('image', 'bbox'):
        printed = float(re.search(rf'PCK-{reference}@0.1-pair: ([0-9.]+)', log).group(1))
        assert printed == pytest.approx(_pck_from_json(out_dir, 0.1, reference), abs=1e-3)
    assert float(re.search(r'PCK@0.1: ([0-9.]+)', log).group(1)) == float(
        re.search(r'PCK-image@0.1-pair: ([0-9.]+)', log).group(1))


@pytest.mark.slow
def test_missing_dataset_is_one_clear_error(tmp_path):
    result = subprocess.run([sys.executable, 'tools/test.py',
                             _config(tmp_path, 'pfwillow_test.py', str(tmp_path / 'PF-WILLOW')),
                             '--work-dir', str(tmp_path / 'work')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f'{tmp_path / "PF-WILLOW"}: no PFWillow split' in result.stderr and 'test_pairs.csv' in result.stderr


@pytest.mark.slow
def test_two_process_test_spreads_pairs(tmp_path):
    root = str(tmp_path / 'SPair-71k')
    kps = [[11.5, 11.5], [27.5, 19.5]]
    make_spair(root, [spair_record(f'img_{i}', f'img_{j}', 'dog', kps, [[5.0 * i, 9.0], [20.0, 7.0 * j]],
                                   [0, 0, 63, 47], [0, 0, 40, 40]) for i, j in ((0, 1), (1, 2), (2, 0))])
    out_dir = str(tmp_path / 'pred')
    result = run_torchrun(['tools/test.py', _config(tmp_path, 'spair71k_test.py', root), '--launcher', 'pytorch',
                           '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')], cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(os.listdir(out_dir)) == 3
    printed = float(re.search(r'PCK@0.1: ([0-9.]+)', result.stdout + result.stderr).group(1))
    assert printed == pytest.approx(_pck_from_json(out_dir, 0.1, 'bbox'), abs=1e-3)


def test_every_pair_config_parses():
    from mmengine.config import Config
    folder = os.path.join(REPO_ROOT, 'configs', 'pair')
    configs = sorted(name for name in os.listdir(folder) if name.endswith('.py'))
    # 4 datasets x (fused default, each branch, random, SFC R50 + R18), CATs' protocol on 3, 2 box priors.
    expected = {f'{model}_{dataset}.py' for model in ('sfc_effl0-r18-fc', 'effl0', 'r18-fc', 'r18-random',
                                                      'sfc_r50-moco_r18-fc')
                for dataset in ('spair71k', 'pfpascal', 'pfwillow', 'pairbench')}
    expected |= {f'sfc_effl0-r18-fc_{dataset}-cats.py' for dataset in ('spair71k', 'pfpascal', 'pfwillow')}
    expected |= {'box-prior_spair71k.py', 'box-prior-auto_spair71k.py'}
    # the semantic pair model (sfc-match's default) and the semantic pair set's configs
    expected |= {'effl0-semantic_spair71k.py', 'effl0-semantic_semanticpairs.py', 'effl0-full_semanticpairs.py',
                 'effl0-semantic-boxprior_semanticpairs.py', 'sfc_effl0-r18-fc_semanticpairs.py',
                 'r18-moco_semanticpairs.py'}
    assert expected <= set(configs), expected - set(configs)
    for name in configs:
        cfg = Config.fromfile(os.path.join(folder, name))
        assert cfg.model.type == 'PairMatchingModel' and 'propagation' not in cfg.model, name
        dataset = name.rsplit('_', 1)[1][:-3].split('-')[0]
        if dataset in ('spair71k', 'pfpascal', 'pfwillow'):  # SCOT's OT-RHM plan exponent per dataset
            assert cfg.model.matcher.ot_exp2 == (1.0 if dataset == 'spair71k' else 0.5), name
        assert (cfg.model.get('protocol') == 'cats') == name.endswith('-cats.py'), name
        assert cfg.test_dataloader.dataset.type in ('SPair71kDataset', 'PFPascalDataset', 'PFWillowDataset'), name
        assert cfg.test_evaluator.type == 'PairPCKMetric', name
        assert 'sfc_plugin.correspondence' in cfg.custom_imports.imports, name
    default = Config.fromfile(os.path.join(REPO_ROOT, 'sfc_plugin', 'assets', 'default_model.py')).model.backbone
    fused = Config.fromfile(os.path.join(folder, 'sfc_effl0-r18-fc_spair71k.py')).model.backbone
    assert fused.to_dict() == default.to_dict()  # the pair configs follow the built-in model


@pytest.mark.slow
def test_branch_config_loads_the_shipped_fc_checkpoint_strictly(tmp_path):
    from sfc_plugin.generators.pair_benchmark import build_pairs, write_benchmark
    root = write_benchmark(str(tmp_path / 'bench'), build_pairs(max_side=96, warps_per_photo=1, keypoints=6,
                                                                photos=['coffee']), {})
    result = subprocess.run([sys.executable, 'tools/test.py', os.path.join('configs', 'pair', 'r18-fc_pairbench.py'),
                             os.path.join('sfc_plugin', 'assets', 'default_model.pth'), '--work-dir',
                             str(tmp_path / 'work'), '--cfg-options', f'test_dataloader.dataset.data_root={root}',
                             'test_dataloader.num_workers=0'],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Loaded sfc_plugin/assets/default_model.pth' in result.stdout + result.stderr
    assert re.search(r'PCK@0.1: [0-9.]+', result.stdout + result.stderr)


def test_features_of_an_image_are_computed_once_per_cache_life(tmp_path):
    from pair_fixtures import write_photo
    from sfc_plugin.correspondence import PairMatchingModel
    model = PairMatchingModel(backbone=dict(type='SFCBackbone', fine_grained=dict(
        type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)), feature_cache=2).eval()
    calls = []
    extractor = model.extractor
    model.extractor = lambda image: calls.append(image.shape) or extractor(image)
    paths = [write_photo(str(tmp_path / f'{name}.jpg'), name) for name in ('chelsea', 'coffee', 'rocket')]
    for path in (paths[0], paths[1], paths[0], paths[2], paths[1]):
        model.features(path)
    assert len(calls) == 4  # chelsea, coffee, (chelsea cached), rocket (evicts coffee), coffee again
