"""tools/test.py end to end on tiny DAVIS, JHMDB and VIP datasets written by the tests."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, run_torchrun
from sfc_plugin.apis import test as run_test
from sfc_plugin.evaluation.functional import davis_statistics, davis_video_scores
from video_fixtures import make_davis, make_jhmdb, make_vip

# A small single-network model: a random ResNet-18 cut after layer3 (stride 8), propagated with
# the FC-alone settings; tiny videos keep each run to a few seconds.
TINY_MODEL = """
model = dict(
    type='PropagationModel',
    backbone=dict(type='SFCBackbone',
                  fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
    propagation=dict(topk=5, context_len=4, radius=6, temperature=0.05),
)
"""


def _config(tmp_path, dataset_base: str, data_root: str, dataset_options: str = '') -> str:
    path = tmp_path / 'config.py'
    base = os.path.join(REPO_ROOT, 'configs', '_base_')
    path.write_text(
        f"_base_ = [{os.path.join(base, 'datasets', dataset_base)!r}, "
        f"{os.path.join(base, 'default_runtime.py')!r}]\n{TINY_MODEL}\n"
        f"test_dataloader = dict(num_workers=0, dataset=dict(data_root={data_root!r}, {dataset_options}))\n")
    return str(path)


def _davis_from_pngs(out_dir: str, davis_root: str, videos) -> float:
    """J&F-Mean recomputed from the written PNGs and the ground truth PNGs."""
    j_means, f_means = [], []
    for video in videos:
        names = sorted(os.listdir(os.path.join(davis_root, 'Annotations', '480p', video)))
        gt = np.stack([np.array(Image.open(os.path.join(davis_root, 'Annotations', '480p', video, n)))
                       for n in names])
        pred = np.stack([np.array(Image.open(os.path.join(out_dir, video, n))) for n in names])
        objects = [int(v) for v in np.unique(gt[0]) if v not in (0, 255)]
        j_scores, f_scores = davis_video_scores(gt, pred, objects)
        j_means += [davis_statistics(row)[0] for row in j_scores]
        f_means += [davis_statistics(row)[0] for row in f_scores]
    return 100 * (np.mean(j_means) + np.mean(f_means)) / 2


@pytest.mark.slow
def test_davis_metric_printed_is_what_the_pngs_give(tmp_path):
    davis_root = str(tmp_path / 'DAVIS')
    videos = {'alpha': (6, 64, 112, 2), 'beta': (5, 72, 96, 3)}
    make_davis(davis_root, videos)
    out_dir = str(tmp_path / 'pred')
    result = subprocess.run(
        [sys.executable, 'tools/test.py', _config(tmp_path, 'davis2017_val.py', davis_root),
         '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = float(re.search(r'J&F-Mean: ([0-9.]+)', result.stdout + result.stderr).group(1))
    for video, (num_frames, height, width, _) in videos.items():
        written = sorted(os.listdir(os.path.join(out_dir, video)))
        assert written == [f'{t:05d}.png' for t in range(num_frames)]
        image = Image.open(os.path.join(out_dir, video, written[-1]))
        assert image.mode == 'P' and image.size == (width, height)
        assert not [name for name in os.listdir(os.path.join(out_dir, video)) if name.startswith('.')]
    assert printed == pytest.approx(_davis_from_pngs(out_dir, davis_root, videos), abs=1e-3)


@pytest.mark.slow
def test_checkpoint_is_loaded_strictly(tmp_path):
    davis_root = str(tmp_path / 'DAVIS')
    make_davis(davis_root, {'alpha': (4, 64, 64, 1)})
    config = _config(tmp_path, 'davis2017_val.py', davis_root)
    from sfc_plugin.models import SFCBackbone
    backbone = SFCBackbone(fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3))
    good = {f'backbone.{key}': value for key, value in backbone.state_dict().items()}
    torch.save({'state_dict': good}, tmp_path / 'good.pth')
    metrics_a = run_test([config, str(tmp_path / 'good.pth'), '--work-dir', str(tmp_path / 'a')])
    metrics_b = run_test([config, str(tmp_path / 'good.pth'), '--work-dir', str(tmp_path / 'b')])
    assert metrics_a == metrics_b  # the same weights give the same numbers: nothing was re-initialised

    bad = dict(good)
    bad.pop('backbone.fine_grained.layer3.1.bn2.weight')
    bad['backbone.semantic.conv1.weight'] = torch.zeros(64, 3, 7, 7)
    torch.save({'state_dict': bad}, tmp_path / 'bad.pth')
    result = subprocess.run([sys.executable, 'tools/test.py', config, str(tmp_path / 'bad.pth'),
                             '--work-dir', str(tmp_path / 'c')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert 'backbone.fine_grained.layer3.1.bn2.weight' in result.stderr
    assert 'backbone.semantic.conv1.weight' in result.stderr


@pytest.mark.slow
def test_jhmdb_pck(tmp_path):
    root = str(tmp_path / 'JHMDB')
    make_jhmdb(root, {'clip_a': (5, 80, 96), 'clip_b': (4, 64, 80)})
    config = _config(tmp_path, 'jhmdb_split1.py', root, "ann_file='testlist_split1.txt', input_size=(64, 64)")
    metrics = run_test([config, '--work-dir', str(tmp_path / 'work')])
    assert set(metrics) == {'PCK@0.1', 'PCK@0.2'}
    assert 0 <= metrics['PCK@0.1'] <= metrics['PCK@0.2'] <= 100


@pytest.mark.slow
def test_vip_miou_and_pngs(tmp_path):
    root = str(tmp_path / 'VIP')
    make_vip(root, {'person': (4, 72, 64, 3)})
    out_dir = str(tmp_path / 'pred')
    config = _config(tmp_path, 'vip_val.py', root, 'input_size=(64, 64)')
    metrics = run_test([config, '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')])
    assert 0 <= metrics['mIoU'] <= 100
    assert len(os.listdir(os.path.join(out_dir, 'person'))) == 4


@pytest.mark.slow
def test_bad_video_names_the_file_and_keeps_written_predictions(tmp_path):
    davis_root = str(tmp_path / 'DAVIS')
    make_davis(davis_root, {'good': (4, 64, 64, 1), 'worse': (4, 64, 64, 1)})
    broken = os.path.join(davis_root, 'JPEGImages', '480p', 'worse', '00002.jpg')
    with open(broken, 'wb') as f:
        f.write(b'not a jpeg')
    out_dir = str(tmp_path / 'pred')
    config = _config(tmp_path, 'davis2017_val.py', davis_root, 'validate_on_load=False')
    result = subprocess.run([sys.executable, 'tools/test.py', config, '--out-dir', out_dir,
                             '--work-dir', str(tmp_path / 'work')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert broken in result.stderr
    assert sorted(os.listdir(os.path.join(out_dir, 'good'))) == [f'{t:05d}.png' for t in range(4)]
    leftovers = [name for root, _, names in os.walk(out_dir) for name in names if name.startswith('.')]
    assert leftovers == []


@pytest.mark.slow
def test_two_process_test_spreads_videos(tmp_path):
    davis_root = str(tmp_path / 'DAVIS')
    videos = {'alpha': (4, 64, 64, 1), 'beta': (4, 64, 64, 2), 'gamma': (4, 64, 64, 1)}
    make_davis(davis_root, videos)
    out_dir = str(tmp_path / 'pred')
    result = run_torchrun(['tools/test.py', _config(tmp_path, 'davis2017_val.py', davis_root), '--launcher', 'pytorch',
                           '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work')], cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out_dir)) == sorted(videos)
    printed = float(re.search(r'J&F-Mean: ([0-9.]+)', result.stdout + result.stderr).group(1))
    assert printed == pytest.approx(_davis_from_pngs(out_dir, davis_root, videos), abs=1e-3)
