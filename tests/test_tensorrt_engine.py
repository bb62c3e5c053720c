"""sfc-export tensorrt and TensorRTEngine.

Building and running engines needs TensorRT 10/11 and a CUDA device; those tests skip with the reason
otherwise. Everything around them (no-TensorRT errors, sidecar checks, precision plan, profiles) runs here.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT
from sfc_plugin.deploy import load_export_meta
from sfc_plugin.deploy.cli import main
from sfc_plugin.deploy import onnxruntime_session
from sfc_plugin.deploy.onnx_export import TIE_GAP
from sfc_plugin.deploy import tensorrt_engine
from sfc_plugin.deploy.tensorrt_engine import (EngineMismatchError, TensorRTEngine, TensorRTUnavailableError,
                                               backbone_profile, build_export_engines, build_plan,
                                               check_engine_sidecar, parse_image_size, read_engine_sidecar)
from sfc_plugin.propagation import topk_boundary_gaps
from tensorrt_standin import CACHE_MAGIC, GPU, RecordingStream, make_tensorrt
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


@pytest.mark.slow
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
    assert bool((topk_boundary_gaps(query, context_feats, differing, meta.settings) <= TIE_GAP).all())


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


# The build and run code paths on a CPU, against a stand-in ``tensorrt`` module (tests/tensorrt_standin.py)
# that mirrors the bindings of TensorRT 10 and 11 and records every call.

@pytest.fixture(params=['10.8.0', '11.4.0'], ids=['trt10', 'trt11'])
def standin(request, monkeypatch):
    trt = make_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    monkeypatch.setattr(tensorrt_engine, '_require_cuda', lambda device=None: torch.device('cpu'))
    monkeypatch.setattr(tensorrt_engine, 'gpu_identity', lambda device=None: (GPU, [9, 0]))
    monkeypatch.setattr(tensorrt_engine, 'EngineStream', lambda device: RecordingStream(device, trt.calls))
    tensorrt_engine.shared_logger.cache_clear()
    yield trt
    tensorrt_engine.shared_logger.cache_clear()


def calls(trt, name: str) -> list:
    return [arguments for called, arguments in trt.calls if called == name]


def copy_export(folder: str, tmp_path) -> str:
    target = str(tmp_path / os.path.basename(folder))
    shutil.copytree(folder, target)
    return target


def test_standin_build_keeps_fp32_exact_and_updates_the_timing_cache(standin, exports, tmp_path):
    folder, cache = copy_export(exports['fixed'], tmp_path), str(tmp_path / 'timing.cache')
    sidecars = build_export_engines(folder, timing_cache=cache)
    trt11 = standin.__version__.startswith('11')
    strongly_typed = 1 << int(standin.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert [c['flags'] for c in calls(standin, 'Builder.create_network')] == [strongly_typed if trt11 else 0] * 2
    assert calls(standin, 'IBuilderConfig.clear_flag') == [{'flag': standin.BuilderFlag.TF32}] * 2
    assert not calls(standin, 'IBuilderConfig.set_flag')
    assert len(calls(standin, 'Logger.__init__')) == 1  # (f) one logger for every build
    assert all(sidecar['precision'] == 'fp32' and sidecar['tensorrt_version'] == standin.__version__
               for sidecar in sidecars.values())
    # (e) the timing cache set was accepted, and the one the builder updated is the one written
    attached = calls(standin, 'IBuilderConfig.set_timing_cache')
    assert [c['ignore_mismatch'] for c in attached] == [False, False]
    written = json.loads(open(cache, 'rb').read()[len(CACHE_MAGIC):])
    assert written['header']['tensorrt'] == standin.__version__
    assert [os.path.basename(path) for path in written['entries']] == ['backbone.onnx', 'propagate.onnx']
    assert not calls(standin, 'IBuilderConfig.get_timing_cache')


def test_standin_fp16_flag_is_for_the_backbone_only(standin, exports, tmp_path):
    folder = copy_export(exports['fixed'], tmp_path)
    with pytest.raises(ValueError, match='backbone engine only'):
        build_export_engines(folder, fp16_flag=True, models=['propagate'])
    if standin.__version__.startswith('11'):
        with pytest.raises(ValueError, match='strongly typed networks only'):
            build_export_engines(folder, fp16_flag=True)
        return
    sidecars = build_export_engines(folder, fp16_flag=True, allow_tf32=True)
    assert calls(standin, 'IBuilderConfig.set_flag') == [{'flag': standin.BuilderFlag.FP16}]  # (b) backbone only
    assert calls(standin, 'IBuilderConfig.clear_flag') == [{'flag': standin.BuilderFlag.TF32}]  # propagate
    assert sidecars['backbone']['precision'] == 'fp16' and sidecars['propagate']['precision'] == 'fp32'
    assert sidecars['propagate']['fp16_flag'] is False and sidecars['propagate']['tf32'] is False


def test_standin_stale_or_damaged_timing_cache_is_replaced(standin, exports, tmp_path):
    folder, cache = copy_export(exports['fixed'], tmp_path), tmp_path / 'timing.cache'
    for blob in (CACHE_MAGIC + json.dumps({'header': {'tensorrt': '9.0.0', 'gpu': GPU}, 'entries': ['x']}).encode(),
                 b'damaged'):
        cache.write_bytes(blob)
        standin.calls.clear()
        build_export_engines(folder, timing_cache=str(cache), models=['backbone'])
        accepted = [c for c in calls(standin, 'IBuilderConfig.set_timing_cache')]
        assert len(accepted) == (2 if blob != b'damaged' else 1)
        written = json.loads(cache.read_bytes()[len(CACHE_MAGIC):])
        assert written['header']['tensorrt'] == standin.__version__ and written['entries'][-1].endswith('backbone.onnx')


def test_standin_engines_run_on_their_stream_at_the_given_addresses(standin, exports, tmp_path):
    folder = copy_export(exports['dynamic'], tmp_path)
    meta = load_export_meta(folder)
    build_export_engines(folder, min_size=(32, 48), max_size=(128, 192))
    assert calls(standin, 'IOptimizationProfile.set_shape') == [
        {'input': 'image', 'min': (1, 3, 32, 48), 'opt': (1, 3, 64, 96), 'max': (1, 3, 128, 192)}]
    engine = TensorRTEngine(os.path.join(folder, 'backbone.engine'), onnx_sha256=meta.sha256['backbone'])
    session = onnxruntime_session(os.path.join(folder, 'backbone.onnx'))
    for size in ((32, 48), (72, 80)):
        standin.calls.clear()
        image = real_frames(size, 1)
        features = engine.run({'image': image})['features']
        assert np.array_equal(features.numpy(), session.run(None, {'image': image.numpy()})[0])
        order = [name for name, _ in standin.calls if name in (
            'IExecutionContext.set_tensor_address', 'EngineStream.begin', 'IExecutionContext.execute_async_v3',
            'EngineStream.end')]
        assert order == ['IExecutionContext.set_tensor_address'] * 2 + [
            'EngineStream.begin', 'IExecutionContext.execute_async_v3', 'EngineStream.end']
        assert calls(standin, 'IExecutionContext.execute_async_v3') == [{'stream_handle': RecordingStream.HANDLE}]
        addresses = {c['name']: c['memory'] for c in calls(standin, 'IExecutionContext.set_tensor_address')}
        assert addresses['features'] == features.data_ptr()
    assert not standin.warnings  # (d) never the default stream
    with pytest.raises(ValueError, match='does not fit the engine'):
        engine.run({'image': real_frames((256, 256), 1)})
    engine.context.refuse_addresses = True
    with pytest.raises(RuntimeError, match='refused the address of image'):  # (e)
        engine.run({'image': real_frames((64, 96), 1)})

    model = load_model(TINY_CONFIG, exports['checkpoint'])
    query, context_feats, context_labels = real_context(model, (64, 96), 4, 3)
    inputs = {'query': query, 'context_feats': context_feats, 'context_labels': context_labels}
    labels = TensorRTEngine(os.path.join(folder, 'propagate.engine')).run(inputs)['labels']
    expected = onnxruntime_session(os.path.join(folder, 'propagate.onnx')).run(
        None, {key: value.numpy() for key, value in inputs.items()})[0]
    assert np.array_equal(labels.numpy(), expected)
    assert not calls(standin, 'Logger.__init__')  # (f) the logger of the build serves every engine
    assert len(calls(standin, 'Runtime.__init__')) == 1


def test_standin_auto_backend_falls_back_to_onnxruntime_for_foreign_engines(standin, exports, tmp_path,
                                                                            monkeypatch):
    from sfc_plugin.runtime import backends
    folder = copy_export(exports['fixed'], tmp_path)
    build_export_engines(folder)
    monkeypatch.setattr(backends, 'has_tensorrt_engines', lambda export_dir: True)
    runner = backends.load_backend(export_dir=folder)
    assert runner.name == 'tensorrt'
    image = real_frames((64, 96), 1)
    expected = onnxruntime_session(os.path.join(folder, 'backbone.onnx')).run(None, {'image': image.numpy()})[0]
    assert np.array_equal(runner.features(image).numpy(), expected[0])

    monkeypatch.setitem(sys.modules, 'tensorrt', make_tensorrt('10.9.0'))  # (h) engines of another TensorRT
    runner = backends.load_backend(export_dir=folder)
    assert runner.name == 'onnxruntime' and 'rebuild it on this machine' in runner.describe()['fallback']
    assert np.array_equal(runner.features(image).numpy(), expected[0])
    with pytest.raises(EngineMismatchError, match=r'built for TensorRT \S+ \(this machine: 10\.9\.0\)'):
        backends.load_backend('tensorrt', export_dir=folder)


def test_onnxruntime_providers_are_exact_on_the_given_gpu():
    from sfc_plugin.runtime.backends import session_providers
    gpu_providers = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    args = dict(available=gpu_providers, gpu=True, device_id=1, cache_dir='/cache', ort_version='1.27.0')
    cuda = ('CUDAExecutionProvider', {'device_id': '1', 'use_tf32': '0'})  # (a), (c)
    trt = ('TensorrtExecutionProvider', {'device_id': '1', 'trt_engine_cache_enable': '1',  # (g)
                                         'trt_engine_cache_path': '/cache', 'trt_timing_cache_enable': '1',
                                         'trt_timing_cache_path': '/cache'})
    for model in ('backbone', 'propagate'):
        # no TensorRT libraries: onnxruntime lists the provider anyway, but it is not put first
        assert session_providers(model, None, tensorrt_version=None, tf32_override=None, **args) == [
            cuda, 'CPUExecutionProvider']
    assert session_providers('backbone', None, tensorrt_version='10.8.0', tf32_override=None, **args) == [
        trt, cuda, 'CPUExecutionProvider']
    # the TensorRT provider cannot turn TF32 off for the propagation step, unless the process does
    assert session_providers('propagate', None, tensorrt_version='10.8.0', tf32_override=None, **args) == [
        cuda, 'CPUExecutionProvider']
    assert session_providers('propagate', None, tensorrt_version='10.8.0', tf32_override='0', **args)[0] == trt
    with pytest.raises(ValueError, match='NVIDIA_TF32_OVERRIDE=0'):
        session_providers('propagate', ['TensorrtExecutionProvider'], tensorrt_version='10.8.0',
                          tf32_override=None, **args)
    # TensorRT 11 needs onnxruntime >= 1.27
    old = dict(args, ort_version='1.26.1')
    assert session_providers('backbone', None, tensorrt_version='11.4.0', tf32_override='0', **old) == [
        cuda, 'CPUExecutionProvider']
    with pytest.raises(ValueError, match=r'TensorRT 11\.4\.0 needs onnxruntime >= 1\.27 \(installed: 1\.26\.1\)'):
        session_providers('backbone', ['TensorrtExecutionProvider'], tensorrt_version='11.4.0',
                          tf32_override='0', **old)
    assert session_providers('backbone', None, tensorrt_version='11.4.0', tf32_override=None, **args)[0] == trt
    assert session_providers('propagate', None, available=gpu_providers, gpu=False, device_id=0, cache_dir='/c',
                             ort_version='1.31.1', tensorrt_version='10.8.0', tf32_override='0') == [
        'CPUExecutionProvider']


def test_cuda_device_parsing_and_tensorrt_version():
    """The one parser of CUDA device names refuses a CPU device and an index torch does not see; without the
    tensorrt module the version is None (and what the runtime's 'auto' backend checks)."""
    with pytest.raises(ValueError, match='device cpu: expected a CUDA device'):
        tensorrt_engine.cuda_device('cpu')
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf'device cuda:{count}: torch sees {count} CUDA device\(s\) here'):
        tensorrt_engine.cuda_device(f'cuda:{count}')
    if count:
        assert tensorrt_engine.cuda_device(f'cuda:{count - 1}') == torch.device('cuda', count - 1)
    try:
        import tensorrt
        expected = tensorrt.__version__
    except (ImportError, OSError):
        expected = None
    assert tensorrt_engine.tensorrt_version() == expected
