"""tools/device_check.py: the GPU check runs its code on the CPU with small sizes and writes every key of its
report; it refuses at once when a package it needs is missing, or CUDA is asked for and absent."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT
from sfc_plugin.benchmarks.device_check import SECTIONS, run_check

TOOL = os.path.join(REPO_ROOT, 'tools', 'device_check.py')
KEYS = {
    'environment': {'date', 'device', 'gpu', 'gpu_capability', 'gpu_memory_gb', 'torch', 'cuda', 'cudnn', 'onnxruntime',
                    'onnxruntime_providers', 'python', 'cpu_model', 'cpu_count', 'cpu_capability', 'amx', 'amx_fp16',
                    'auto_select_dtype', 'seconds'},
    'core_parity': {'feature_size', 'channels', 'frames', 'settings', 'cpu_select_dtype', 'device_path',
                    'argmax_agreement_vs_cpu', 'max_soft_diff_vs_cpu', 'argmax_agreement_vs_reference',
                    'max_soft_diff_vs_reference', 'seconds'},
    'core_speed': {'feature_size', 'context_len', 'measured_frames', 'runs', 'batched_step_host_syncs', 'seconds'},
    'backbones': {'model', 'image_size', 'channels', 'feature_size', 'iterations', 'runs', 'seconds'},
    'end_to_end': {'frames', 'frame_size', 'runs', 'seconds'},
    'memory_by_length': {'runs', 'measure', 'ratio_long_to_short', 'seconds'},
}


def load_tool():
    spec = importlib.util.spec_from_file_location('device_check_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_check_on_the_cpu_writes_every_key(tmp_path):
    out = tmp_path / 'report.json'
    result = subprocess.run([sys.executable, TOOL, '--device', 'cpu', '--quick', '--out', str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report
    assert report['failed_sections'] == [] and report['quick'] is True
    for section in SECTIONS:
        assert set(report[section]) == KEYS[section], section
    parity = report['core_parity']
    assert parity['device_path'] == 'batched tiles'  # the CUDA path's layout, on CPU tensors
    assert parity['argmax_agreement_vs_reference'] >= 0.999 and parity['max_soft_diff_vs_reference'] <= 1e-4
    assert parity['argmax_agreement_vs_cpu'] >= 0.999 and parity['max_soft_diff_vs_cpu'] <= 1e-4
    runs = report['core_speed']['runs']
    assert {(run['channels'], run['path'], run['precision']) for run in runs} == {
        (c, path, precision) for c in (32, report['backbones']['channels'])
        for path, precision in (('batched tiles', 'fp32'), ('batched tiles', 'tf32'), ('tile rows', 'fp32'))}
    assert [run['dtype'] for run in report['backbones']['runs']] == ['float32', 'float16', 'bfloat16']
    assert all(run['min_cosine_vs_fp32'] > 0.98 for run in report['backbones']['runs'])
    run_keys = {'frames', 'frames_per_second', 'seconds', 'stages', 'peak_device_mb', 'peak_rss_mb',
                'rss_after_load_mb'}
    for run in list(report['end_to_end']['runs'].values()) + list(report['memory_by_length']['runs'].values()):
        assert set(run) == run_keys and run['frames_per_second'] > 0
    assert sorted(report['end_to_end']['runs']) == ['float16', 'float32']
    assert all(run['frames'] == 6 for run in report['end_to_end']['runs'].values())
    assert sorted(report['memory_by_length']['runs']) == ['3', '6']
    assert report['environment']['cpu_capability'] == torch.backends.cpu.get_cpu_capability()


def test_missing_wheels_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    tool = load_tool()
    assert tool.missing_wheels() == []
    monkeypatch.setitem(tool.WHEELS, 'no_such_module_sfc', 'no-such-wheel==1.0')
    monkeypatch.setattr(sys, 'argv', ['device_check.py', '--out', str(tmp_path / 'report.json')])
    assert tool.main() == 2
    error = capsys.readouterr().err
    assert 'missing here: no-such-wheel==1.0' in error and '-d .whl no-such-wheel==1.0' in error
    assert not (tmp_path / 'report.json').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available here')
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(RuntimeError, match='sees no CUDA device'):
        run_check('cuda', quick=True)
    with pytest.raises(ValueError, match='unknown sections'):
        run_check('cpu', quick=True, sections=['nope'])
