"""sfc-export tensorrt and TensorRTEngine.

Building and running engines needs TensorRT 10/11 and a CUDA device; those tests skip with the reason
otherwise. Everything around them (no-TensorRT errors, sidecar checks, precision plan, profiles) runs here.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT
from sfc_plugin.deploy import load_export_meta
from sfc_plugin.deploy.cli import main
from sfc_plugin.deploy.onnx_export import TIE_GAP, onnxruntime_session, topk_boundary_gaps
from sfc_plugin.deploy.tensorrt_engine import (EngineMismatchError, TensorRTEngine, TensorRTUnavailableError,
                                               backbone_profile, build_export_engines, build_plan,
                                               check_engine_sidecar, parse_image_size, read_engine_sidecar)
from sfc_plugin.propagation import PropagationSettings
from test_export_onnx import TINY_CONFIG, load_model, make_checkpoint, real_context, real_frames

try:
    import tensorrt  # noqa: F401
    TENSORRT_MISSING = None
except (ImportError, OSError) as error:
    TENSORRT_MISSING = f'tensorrt cannot be imported ({error})'
GPU_MISSING = None if torch.cuda.is_available() else 'no CUDA device'
needs_tensorrt_and_gpu = pytest.mark.skipif(
    bool(TENSORRT_MISSING or GPU_MISSING),
    reason=f'TensorRT engine tests need TensorRT and a CUDA device: {TENSORRT_MISSING or GPU_MISSING}')
without_tensorrt = pytest.mark.skipif(TENSORRT_MISSING is None, reason='tensorrt is installed here')


@pytest.fixture(scope='module')
def exports(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('exports')
    checkpoint = make_checkpoint(TINY_CONFIG, str(root / 'tiny.pth'))
    folders = {'checkpoint': checkpoint}
    for name, options in (('fixed', []), ('dynamic', ['--dynamic'])):
        folders[name] = str(root / name)
        assert main(['onnx', TINY_CONFIG, checkpoint, '--out', folders[name], '--image-size', '64', '96',
                     '--num-labels', '3', '--no-verify', *options]) == 0
    return folders


@pytest.fixture(scope='module')
def fp16_export(exports, tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp('fp16'))
    assert main(['onnx', TINY_CONFIG, exports['checkpoint'], '--out', folder, '--image-size', '64', '96',
                 '--num-labels', '3', '--fp16', '--fp16-propagate']) == 0
    return folder


@without_tensorrt
def test_tensorrt_command_without_tensorrt_says_so(exports, capsys):
    assert main(['tensorrt', exports['fixed']]) == 1
    error = capsys.readouterr().err
    assert 'TensorRT is not installed here' in error and 'onnxruntime' in error
    assert not [name for name in os.listdir(exports['fixed']) if 'engine' in name]
    result = subprocess.run([sys.executable, 'export/sfc_export.py', 'tensorrt', exports['fixed']], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and 'TensorRT is not installed here' in result.stderr


@without_tensorrt
def test_engine_loading_errors_without_tensorrt(tmp_path):
    engine = tmp_path / 'backbone.engine'
    with pytest.raises(FileNotFoundError, match='no such engine file'):
        TensorRTEngine(str(engine))
    engine.write_bytes(b'serialized engine')
    with pytest.raises(EngineMismatchError, match='backbone.engine.json: missing'):
        TensorRTEngine(str(engine))
    (tmp_path / 'backbone.engine.json').write_text(json.dumps({'format_version': 1, 'tensorrt_version': '10.3.0'}))
    with pytest.raises(TensorRTUnavailableError, match='TensorRT is not installed here'):
        TensorRTEngine(str(engine))


def test_sidecar_must_match_tensorrt_and_gpu(tmp_path):
    sidecar = {'format_version': 1, 'tensorrt_version': '10.3.0', 'gpu_name': 'NVIDIA A100-SXM4-80GB',
               'compute_capability': [8, 0]}
    engine = str(tmp_path / 'export' / 'propagate.engine')
    check_engine_sidecar(sidecar, engine, '10.3.0', 'NVIDIA A100-SXM4-80GB', (8, 0))  # the same machine: fine
    with pytest.raises(EngineMismatchError) as error:
        check_engine_sidecar(sidecar, engine, '11.4.0', 'NVIDIA A100-SXM4-80GB', (8, 0))
    assert 'TensorRT 10.3.0 (this machine: 11.4.0)' in str(error.value)
    assert f'sfc-export tensorrt {tmp_path / "export"}' in str(error.value)
    with pytest.raises(EngineMismatchError) as error:
        check_engine_sidecar(sidecar, engine, '10.3.0', 'NVIDIA H100 80GB HBM3', (9, 0))
    assert 'GPU NVIDIA A100-SXM4-80GB with compute capability 8.0 (this machine: NVIDIA H100 80GB HBM3, 9.0)' in str(
        error.value)
    (tmp_path / 'old.engine.json').write_text(json.dumps({**sidecar, 'format_version': 0}))
    with pytest.raises(EngineMismatchError, match='format_version 0'):
        read_engine_sidecar(str(tmp_path / 'old.engine'))
    (tmp_path / 'bad.engine.json').write_text('{')
    with pytest.raises(EngineMismatchError, match='bad.engine.json: cannot read it as JSON'):
        read_engine_sidecar(str(tmp_path / 'bad.engine'))


def test_build_plan_for_tensorrt_10_and_11():
    # TensorRT 10 (has BuilderFlag.FP16): FP32 models weakly typed, --fp16 sets the flag
    assert build_plan('fp32', False, True, False) == {'strongly_typed': False, 'fp16_flag': False, 'tf32': False}
    assert build_plan('fp32', True, True, False) == {'strongly_typed': False, 'fp16_flag': True, 'tf32': False}
    # FP16 models are built strongly typed on both; the flag is never needed
    assert build_plan('fp16', True, True, True) == {'strongly_typed': True, 'fp16_flag': False, 'tf32': True}
    assert build_plan('fp16', False, False, False) == {'strongly_typed': True, 'fp16_flag': False, 'tf32': False}
    # TensorRT 11 (no FP16 flag): FP32 stays FP32; --fp16 on an FP32 model says to export FP16
    assert build_plan('fp32', False, False, False) == {'strongly_typed': True, 'fp16_flag': False, 'tf32': False}
    with pytest.raises(ValueError, match=r'sfc-export onnx \.\.\. --fp16'):
        build_plan('fp32', True, False, False)


def test_backbone_profile(exports):
    fixed, dynamic = load_export_meta(exports['fixed']), load_export_meta(exports['dynamic'])
    assert backbone_profile(fixed) is None
    with pytest.raises(ValueError, match='fixed 64x96 image'):
        backbone_profile(fixed, opt_size=(64, 96))
    assert backbone_profile(dynamic) == {'image': ((1, 3, 64, 96),) * 3}
    assert backbone_profile(dynamic, (32, 48), None, (128, 192)) == {
        'image': ((1, 3, 32, 48), (1, 3, 64, 96), (1, 3, 128, 192))}
    with pytest.raises(ValueError, match='min <= opt <= max'):
        backbone_profile(dynamic, (80, 48), (64, 96), (128, 192))
    assert parse_image_size('480x854') == (480, 854) and parse_image_size('64X96') == (64, 96)
    for text in ('480', '480x', 'ax854', '0x854'):
        with pytest.raises(ValueError):
            parse_image_size(text)


@needs_tensorrt_and_gpu
def test_fp32_engines_match_onnxruntime(exports):
    """FP32 engines (TF32 off) against onnxruntime's FP32 models: max abs error 1e-3 on the features,
    argmax agreement >= 99.9 % and max abs error 1e-3 on the soft labels."""
    folder = exports['fixed']
    sidecars = build_export_engines(folder)
    meta = load_export_meta(folder)
    for name in ('backbone', 'propagate'):
        assert os.path.isfile(os.path.join(folder, f'{name}.engine'))
        assert read_engine_sidecar(os.path.join(folder, f'{name}.engine')) == sidecars[name]
        assert sidecars[name]['onnx_sha256'] == meta.sha256[name] and sidecars[name]['precision'] == 'fp32'
    model = load_model(TINY_CONFIG, exports['checkpoint'])
    image = real_frames((64, 96), 1)
    engine = TensorRTEngine(os.path.join(folder, 'backbone.engine'), onnx_sha256=meta.sha256['backbone'])
    features = engine.run({'image': image})['features'].cpu().numpy()
    expected = onnxruntime_session(os.path.join(folder, 'backbone.onnx')).run(None, {'image': image.numpy()})[0]
    assert np.abs(features - expected).max() < 1e-3

    query, context_feats, context_labels = real_context(model, (64, 96), 4, 3)
    inputs = {'query': query, 'context_feats': context_feats, 'context_labels': context_labels}
    labels = TensorRTEngine(os.path.join(folder, 'propagate.engine')).run(inputs)['labels'].cpu()
    expected = torch.from_numpy(onnxruntime_session(os.path.join(folder, 'propagate.onnx')).run(
        None, {key: value.numpy() for key, value in inputs.items()})[0])
    assert (labels.argmax(0) == expected.argmax(0)).float().mean() >= 0.999
    # cells that differ must be ties at the top-k boundary, where either key is right
    differing = torch.nonzero((labels - expected).abs().amax(0).flatten() > 1e-3).flatten()
    settings = PropagationSettings(topk=meta.topk, radius=meta.radius, temperature=meta.temperature)
    assert bool((topk_boundary_gaps(query, context_feats, differing, settings) <= TIE_GAP).all())


@needs_tensorrt_and_gpu
def test_dynamic_and_fp16_engines(exports, fp16_export, tmp_path):
    meta = load_export_meta(exports['dynamic'])
    build_export_engines(exports['dynamic'], min_size=(32, 48), max_size=(128, 192), models=['backbone'],
                         timing_cache=str(tmp_path / 'timing.cache'))
    assert os.path.getsize(tmp_path / 'timing.cache') > 0
    engine = TensorRTEngine(os.path.join(exports['dynamic'], 'backbone.engine'), meta.sha256['backbone'])
    session = onnxruntime_session(os.path.join(exports['dynamic'], 'backbone.onnx'))
    for size in ((32, 48), (72, 80), (128, 192)):
        image = real_frames(size, 1)
        features = engine.run({'image': image})['features'].cpu().numpy()
        assert np.abs(features - session.run(None, {'image': image.numpy()})[0]).max() < 1e-3
    with pytest.raises(ValueError, match='does not fit the engine'):
        engine.run({'image': real_frames((256, 256), 1)})

    build_export_engines(fp16_export)
    image = real_frames((64, 96), 1)
    features = TensorRTEngine(os.path.join(fp16_export, 'backbone.engine')).run({'image': image})['features']
    expected = onnxruntime_session(os.path.join(exports['fixed'], 'backbone.onnx')).run(None, {'image': image.numpy()})
    assert np.abs(features.cpu().numpy() - expected[0]).max() < 5e-3  # the FP16 tolerance of the ONNX export


@needs_tensorrt_and_gpu
def test_engine_for_another_tensorrt_or_gpu_is_refused(exports):
    folder = exports['fixed']
    engine = os.path.join(folder, 'backbone.engine')
    if not os.path.isfile(engine):
        build_export_engines(folder, models=['backbone'])
    sidecar = read_engine_sidecar(engine)
    try:
        with open(engine + '.json', 'w') as f:
            json.dump({**sidecar, 'tensorrt_version': '9.9.9'}, f)
        with pytest.raises(EngineMismatchError, match='rebuild it on this machine with `sfc-export tensorrt'):
            TensorRTEngine(engine)
        with open(engine + '.json', 'w') as f:
            json.dump({**sidecar, 'compute_capability': [1, 0]}, f)
        with pytest.raises(EngineMismatchError, match='compute capability 1.0'):
            TensorRTEngine(engine)
        with open(engine + '.json', 'w') as f:
            json.dump(sidecar, f)
        with pytest.raises(EngineMismatchError, match='another export'):
            TensorRTEngine(engine, onnx_sha256='0' * 64)
    finally:
        with open(engine + '.json', 'w') as f:
            json.dump(sidecar, f)
