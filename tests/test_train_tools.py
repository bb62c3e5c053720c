"""tools/train.py end to end: training on real photos, exact resume, two-process gloo training."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, free_port
from sfc_plugin.apis import train
from train_helpers import SimulatedCrash

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'fc', 'fc_r18_tiny_cpu.py')


def _scalars(work_dir: str) -> list:
    (path,) = glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_train_cli_loss_goes_down_and_writes_checkpoint(tmp_path, real_image_dir):
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir', str(work_dir),
         '--cfg-options', f'train_dataloader.dataset.data_root={real_image_dir}',
         'train_cfg.max_iters=40', 'default_hooks.logger.interval=4',
         'default_hooks.checkpoint.interval=20'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [row['loss'] for row in _scalars(str(work_dir)) if 'loss' in row]
    assert len(losses) >= 10  # every 4 iterations, plus mmengine's end-of-epoch rows
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.1, losses
    checkpoint = torch.load(work_dir / 'iter_40.pth', map_location='cpu', weights_only=True)
    assert checkpoint['meta']['iter'] == 40
    assert any(key.startswith('target_') or 'target' in key for key in checkpoint['state_dict'])


def _write_config(path, base: str, extra: str = '') -> str:
    path.write_text(f"_base_ = [{base!r}]\n{extra}")
    return str(path)


@pytest.mark.slow
def test_resume_is_exact(tmp_path, real_image_dir):
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={real_image_dir}',
               'train_cfg.max_iters=12', 'default_hooks.checkpoint.interval=6',
               'default_hooks.checkpoint.max_keep_ckpts=5', 'randomness.deterministic=True']
    plain = _write_config(tmp_path / 'plain.py', TINY_CONFIG)
    crashing = _write_config(
        tmp_path / 'crashing.py', TINY_CONFIG,
        "custom_imports = dict(imports=['sfc_plugin', 'train_helpers'])\n"
        "custom_hooks = [dict(type='CrashAfterIterHook', at=6)]\n")

    train([plain, '--work-dir', str(tmp_path / 'straight')] + options)
    with pytest.raises(SimulatedCrash):
        train([crashing, '--work-dir', str(tmp_path / 'stopped')] + options)
    assert os.path.exists(tmp_path / 'stopped' / 'iter_6.pth')
    assert not os.path.exists(tmp_path / 'stopped' / 'iter_12.pth')
    train([plain, '--work-dir', str(tmp_path / 'stopped'), '--resume'] + options)

    straight = torch.load(tmp_path / 'straight' / 'iter_12.pth', map_location='cpu', weights_only=True)
    resumed = torch.load(tmp_path / 'stopped' / 'iter_12.pth', map_location='cpu', weights_only=True)
    assert straight['state_dict'].keys() == resumed['state_dict'].keys()
    target_keys = [key for key in straight['state_dict'] if 'target' in key]
    assert target_keys, 'the EMA target must be saved in the checkpoint'
    for key, value in straight['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    straight_state = straight['optimizer']['state']
    resumed_state = resumed['optimizer']['state']
    assert straight_state.keys() == resumed_state.keys()
    for index, state in straight_state.items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed_state[index][name])), name
    assert resumed['meta']['iter'] == 12


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path, real_image_dir):
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
         '--master_port', str(free_port()), 'tools/train.py', TINY_CONFIG, '--launcher', 'pytorch',
         '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={real_image_dir}', 'train_cfg.max_iters=4',
         'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=2'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert os.path.exists(work_dir / 'iter_4.pth')
    (log,) = glob.glob(str(work_dir / '*' / '*.log'))
    text = open(log).read()
    assert 'Distributed training: True' in text
    assert "'backend': 'gloo'" in text or 'gloo' in text
