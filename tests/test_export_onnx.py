"""sfc-export onnx: backbone.onnx / propagate.onnx / meta.json, parity with PyTorch, FP16, bad input."""
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config
from onnx import TensorProto, helper, numpy_helper

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.generators.offline_data import skimage_photo
from sfc_plugin.deploy import ExportFormatError, convert_to_fp16, load_export_meta
from sfc_plugin.deploy import onnx_export
from sfc_plugin.deploy.cli import main
from sfc_plugin.deploy import onnxruntime_session
from sfc_plugin.deploy.onnx_export import compact_uniform_constants
from sfc_plugin.apis.inference import build_model
from sfc_plugin.propagation import (PropagationSettings, PropagationStep, mask_to_soft_labels,
                                    reference_propagate_step)
from sfc_plugin.registry import MODELS

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')
FULL_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r50-moco_r18-fc_davis2017.py')
TINY_SETTINGS = PropagationSettings(topk=5, context_len=4, radius=6, temperature=0.05, select_dtype=None)  # configs/sfc/sfc_r18-r18_tiny.py
NUM_LABELS = 3


def load_model(config: str, checkpoint: str) -> torch.nn.Module:
    """The PyTorch model, built and loaded here without the exporter's helpers."""
    model = MODELS.build(Config.fromfile(config).model)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
    return model.eval()


def real_frames(size, count: int, step_px: int = 3) -> torch.Tensor:
    """(count, 3, H, W) crops of a real photo, each moved ``step_px`` pixels right and down."""
    height, width = size
    margin = step_px * count
    photo = cv2.resize(skimage_photo('astronaut'), (width + margin, height + margin), interpolation=cv2.INTER_AREA)
    crops = [photo[i * step_px:i * step_px + height, i * step_px:i * step_px + width] for i in range(count)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def real_context(model: torch.nn.Module, size, context_len: int, num_labels: int):
    """Query features and a context of m + 1 frames of a moving real photo, with soft labels made from a
    mask (a disc and a band) that moves with the frames, as a video's predictions would."""
    frames = real_frames(size, context_len + 2)
    with torch.no_grad():
        feats = model.backbone(frames)  # (m + 2, C, h, w)
    height, width = size
    rows, cols = np.mgrid[:height, :width]
    labels = []
    for i in range(context_len + 1):
        ids = np.zeros(size, np.int64)
        ids[(rows - height / 2 + 3 * i) ** 2 + (cols - width / 3 + 3 * i) ** 2 < (height / 4) ** 2] = 1
        ids[(rows + 3 * i) % height > 0.8 * height] = 2
        labels.append(mask_to_soft_labels(ids, list(range(num_labels)), tuple(feats.shape[-2:])))
    return feats[-1], feats[:-1], torch.stack(labels)


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory) -> str:
    return make_checkpoint(TINY_CONFIG, str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


@pytest.fixture(scope='module')
def fixed_export(tmp_path_factory, tiny_checkpoint) -> str:
    """64x96, fixed size, via the script in a subprocess (the console script's code path)."""
    out = str(tmp_path_factory.mktemp('fixed'))
    result = subprocess.run([sys.executable, 'export/sfc_export.py', 'onnx', TINY_CONFIG, tiny_checkpoint,
                             '--out', out, '--image-size', '64', '96', '--num-labels', str(NUM_LABELS)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope='module')
def dynamic_export(tmp_path_factory, tiny_checkpoint) -> str:
    """Dynamic height and width, traced at 72x80 (9x10 features), in-process."""
    out = str(tmp_path_factory.mktemp('dynamic'))
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '72', '80', '--dynamic',
                 '--num-labels', str(NUM_LABELS)]) == 0
    return out


@pytest.mark.slow
def test_export_folder_and_meta(fixed_export, tiny_checkpoint):
    assert sorted(os.listdir(fixed_export)) == ['backbone.onnx', 'meta.json', 'propagate.onnx']
    with open(os.path.join(fixed_export, 'meta.json')) as f:
        meta = json.load(f)
    with open(tiny_checkpoint, 'rb') as f:
        checkpoint_sha256 = hashlib.sha256(f.read()).hexdigest()
    expected = dict(format_version=4, image_size=[64, 96], feat_size=[8, 12], stride=8, channels=512,
                    num_labels=NUM_LABELS, propagation=dict(topk=5, context_len=4, radius=6, temperature=0.05,
                                                            radius_on_first=False, hard_labels=False,
                                                            pad_with_first=True, dilution_gain=1.0, guide_radius=0.0,
                                                            guide_eps=1e-4),
                    fine_grained_weight=1.75,
                    opset=17, precision='fp32', checkpoint_sha256=checkpoint_sha256,
                    files={'backbone': 'backbone.onnx', 'propagate': 'propagate.onnx'})
    assert {key: meta[key] for key in expected} == expected
    assert meta['normalization']['semantic']['mean'] == pytest.approx([0.485, 0.456, 0.406])
    assert meta['normalization']['fine_grained']['std'] == pytest.approx([0.229, 0.224, 0.225])
    assert meta['source_config'] == os.path.abspath(TINY_CONFIG)
    assert meta['torch_version'] == torch.__version__ and meta['onnx_version'] == onnx.__version__
    assert meta['tensorrt_check'] == {'backbone': [], 'propagate': []}
    for name in ('backbone', 'propagate'):
        with open(os.path.join(fixed_export, f'{name}.onnx'), 'rb') as f:
            assert meta['sha256'][name] == hashlib.sha256(f.read()).hexdigest()
        onnx.checker.check_model(os.path.join(fixed_export, f'{name}.onnx'), full_check=True)
        opsets = {o.domain: o.version for o in onnx.load(os.path.join(fixed_export, f'{name}.onnx')).opset_import}
        assert opsets[''] == 17
    assert load_export_meta(fixed_export).feat_size == [8, 12]


@pytest.mark.slow
def test_backbone_parity_at_two_resolutions(fixed_export, dynamic_export, tiny_checkpoint):
    model = load_model(TINY_CONFIG, tiny_checkpoint)
    cases = [(fixed_export, (64, 96)), (dynamic_export, (72, 80)), (dynamic_export, (61, 90))]
    for folder, size in cases:
        image = real_frames(size, 1)
        with torch.no_grad():
            expected = model.backbone(image).numpy()
        actual = onnxruntime_session(os.path.join(folder, 'backbone.onnx')).run(None, {'image': image.numpy()})[0]
        assert actual.shape == (1, 512, -(-size[0] // 8), -(-size[1] // 8))
        assert np.abs(actual - expected).max() < 1e-4
        assert np.allclose(np.linalg.norm(actual, axis=1), 1, atol=1e-5)  # L2-normalised per location
    graph_input = onnx.load(os.path.join(dynamic_export, 'backbone.onnx')).graph.input[0]
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, 3, 'height', 'width']


@pytest.mark.slow
@pytest.mark.parametrize('folder_fixture, size', [('fixed_export', (64, 96)), ('dynamic_export', (72, 80))])
def test_propagate_parity_with_the_core_and_the_dense_reference(request, folder_fixture, size, tiny_checkpoint):
    folder = request.getfixturevalue(folder_fixture)
    model = load_model(TINY_CONFIG, tiny_checkpoint)
    query, context_feats, context_labels = real_context(model, size, 4, NUM_LABELS)
    session = onnxruntime_session(os.path.join(folder, 'propagate.onnx'))
    actual = torch.from_numpy(session.run(None, {'query': query.numpy(), 'context_feats': context_feats.numpy(),
                                                 'context_labels': context_labels.numpy()})[0])
    core = PropagationStep(*query.shape[1:], TINY_SETTINGS)(query, context_feats, context_labels)
    dense = reference_propagate_step(query, context_feats[0], context_labels[0], list(context_feats[1:]),
                                     list(context_labels[1:]), settings=TINY_SETTINGS)
    for expected in (core, dense):
        assert (actual.argmax(0) == expected.argmax(0)).float().mean() >= 0.999
        assert (actual - expected).abs().max() < 1e-4
    assert torch.allclose(actual.sum(0), torch.ones(actual.shape[1:]), atol=1e-5)


@pytest.mark.slow
def test_fp16_export_keeps_sensitive_ops_in_fp32(tmp_path, tiny_checkpoint):
    out = str(tmp_path / 'fp16')
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '64', '96',
                 '--num-labels', str(NUM_LABELS), '--fp16', '--fp16-propagate']) == 0
    meta = load_export_meta(out)
    assert meta.precision == 'fp16' and meta.precisions == {'backbone': 'fp16', 'propagate': 'fp16'}
    for name, heavy, sensitive in (('backbone', 'Conv', ('Sub', 'ReduceL2', 'Clip', 'Div')),
                                   ('propagate', 'MatMul', ('TopK', 'Softmax', 'ReduceSum'))):
        model = onnx.shape_inference.infer_shapes(onnx.load(os.path.join(out, f'{name}.onnx')))
        types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.value_info)}
        types.update({init.name: init.data_type for init in model.graph.initializer})
        assert {v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)} == {
            TensorProto.FLOAT}
        assert all(types[i] == TensorProto.FLOAT16 for n in model.graph.node if n.op_type == heavy for i in n.input)
        for op in sensitive:
            assert all(types[n.input[0]] == TensorProto.FLOAT for n in model.graph.node if n.op_type == op), op
        assert set(sensitive) <= {node.op_type for node in model.graph.node}

    # Stated tolerances (TOLERANCES in onnx_export): backbone max abs error 5e-3; propagation with FP16
    # affinities: argmax agreement >= 97 %, mean abs error <= 1e-2 (top-k keys closer than FP16's
    # resolution may swap).
    model = load_model(TINY_CONFIG, tiny_checkpoint)
    image = real_frames((64, 96), 1)
    with torch.no_grad():
        expected = model.backbone(image).numpy()
    actual = onnxruntime_session(os.path.join(out, 'backbone.onnx')).run(None, {'image': image.numpy()})[0]
    assert np.abs(actual - expected).max() < 5e-3
    query, context_feats, context_labels = real_context(model, (64, 96), 4, NUM_LABELS)
    soft = torch.from_numpy(onnxruntime_session(os.path.join(out, 'propagate.onnx')).run(
        None, {'query': query.numpy(), 'context_feats': context_feats.numpy(),
               'context_labels': context_labels.numpy()})[0])
    exact = PropagationStep(8, 12, TINY_SETTINGS)(query, context_feats, context_labels)
    assert (soft.argmax(0) == exact.argmax(0)).float().mean() >= 0.97
    assert (soft - exact).abs().mean() <= 1e-2


@pytest.mark.slow
def test_fp16_export_keeps_the_propagation_step_fp32_by_default(tmp_path, tiny_checkpoint):
    out = str(tmp_path / 'fp16')
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '64', '96', '--fp16']) == 0
    meta = load_export_meta(out)
    assert meta.precisions == {'backbone': 'fp16', 'propagate': 'fp32'}
    assert meta.verification['measured']['propagate']['max_abs'] <= 1e-4
    propagate = onnx.shape_inference.infer_shapes(onnx.load(os.path.join(out, 'propagate.onnx')))
    assert TensorProto.FLOAT16 not in {v.type.tensor_type.elem_type for v in propagate.graph.value_info}


def test_fp16_conversion_of_a_small_graph():
    """Conv (FP16) -> Relu (follows) -> L2 normalisation (FP32) -> Softmax (FP32), checked with numpy."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 3, 1, 1)).astype(np.float32)
    weight[0, 0, 0, 0] = 1e6  # beyond FP16: clamped to 65504 in the FP16 copy
    nodes = [helper.make_node('Conv', ['x', 'w'], ['conv']), helper.make_node('Relu', ['conv'], ['relu']),
             helper.make_node('ReduceL2', ['relu'], ['norm'], axes=[1], keepdims=1),
             helper.make_node('Clip', ['norm', 'eps'], ['safe']), helper.make_node('Div', ['relu', 'safe'], ['unit']),
             helper.make_node('Softmax', ['unit'], ['y'], axis=1)]
    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 2, 2])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4, 2, 2])],
                              [numpy_helper.from_array(weight, 'w'),
                               numpy_helper.from_array(np.array(1e-12, np.float32), 'eps')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
    converted = convert_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    types = {v.name: v.type.tensor_type.elem_type for v in converted.graph.value_info}
    initializers = {init.name: numpy_helper.to_array(init) for init in converted.graph.initializer}
    conv, relu = [n for n in converted.graph.node if n.op_type in ('Conv', 'Relu')]
    assert initializers[conv.input[1]].dtype == np.float16 and initializers[conv.input[1]].max() == 65504
    assert types[relu.output[0]] == TensorProto.FLOAT16
    assert initializers['eps'].dtype == np.float32  # the epsilon stays representable
    assert all(types.get(i, TensorProto.FLOAT) == TensorProto.FLOAT for n in converted.graph.node
               if n.op_type in ('ReduceL2', 'Div', 'Softmax') for i in n.input[:1])

    x = rng.random((1, 3, 2, 2)).astype(np.float32)
    path_weight = np.clip(weight, -65504, 65504).astype(np.float16).astype(np.float32)
    conv_out = np.einsum('oc,nchw->nohw', path_weight[:, :, 0, 0], x.astype(np.float16).astype(np.float32))
    relu_out = np.maximum(conv_out.astype(np.float16), 0).astype(np.float32)
    unit = relu_out / np.maximum(np.sqrt((relu_out ** 2).sum(1, keepdims=True)), 1e-12)
    expected = np.exp(unit) / np.exp(unit).sum(1, keepdims=True)
    session = onnxruntime_session(converted.SerializeToString())
    assert np.allclose(session.run(None, {'x': x})[0], expected, atol=1e-3)


def test_uniform_constants_become_constant_of_shape():
    big = np.full((64, 64), -np.inf, np.float32)
    nodes = [helper.make_node('Constant', [], ['block'], value=numpy_helper.from_array(big, 'block')),
             helper.make_node('Max', ['x', 'block'], ['y'])]
    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [64, 64])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [64, 64])],
                              [numpy_helper.from_array(np.ones((32, 32), np.float32), 'unused_ones')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
    assert compact_uniform_constants(model) == 2
    assert len(model.SerializeToString()) < 2000 and 'ConstantOfShape' in {n.op_type for n in model.graph.node}
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    assert np.array_equal(onnxruntime_session(model.SerializeToString()).run(None, {'x': x})[0], x)


def test_checkpoint_that_does_not_fit_lists_the_keys(tmp_path, tiny_checkpoint, capsys):
    state = torch.load(tiny_checkpoint, weights_only=True)['state_dict']
    state.pop('backbone.semantic.layer3.1.bn2.weight')
    state['backbone.fine_grained.layer4.0.conv1.weight'] = torch.zeros(512, 256, 3, 3)
    torch.save({'state_dict': state}, tmp_path / 'bad.pth')
    out = tmp_path / 'out'
    assert main(['onnx', TINY_CONFIG, str(tmp_path / 'bad.pth'), '--out', str(out), '--image-size', '64', '96']) == 1
    error = capsys.readouterr().err
    assert str(tmp_path / 'bad.pth') in error
    assert 'backbone.semantic.layer3.1.bn2.weight' in error and 'backbone.fine_grained.layer4.0.conv1.weight' in error
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.parametrize('size, message', [(('0', '96'), 'two positive integers'),
                                           (('8', '8'), 'fewer than topk=5 cells')])
def test_impossible_image_size(tmp_path, tiny_checkpoint, capsys, size, message):
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', str(tmp_path / 'out'), '--image-size', *size]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_unwritable_output_folder(tmp_path, tiny_checkpoint, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', str(blocker / 'export'),
                 '--image-size', '64', '96']) == 1
    error = capsys.readouterr().err
    assert str(blocker / 'export') in error and 'cannot write' in error


def read_folder(folder: str) -> dict:
    contents = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), 'rb') as f:
            contents[name] = f.read()
    return contents


@pytest.mark.slow
def test_interrupted_export_leaves_the_previous_one_intact(tmp_path, tiny_checkpoint, monkeypatch):
    out = str(tmp_path / 'out')
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '64', '96']) == 0
    before = read_folder(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(onnx_export, '_verify', interrupted)  # after both models are written to temp files
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '72', '80']) == 130
    assert read_folder(out) == before
    assert load_export_meta(out).image_size == [64, 96]


@pytest.mark.slow
def test_export_interrupted_while_moving_files_is_not_taken_for_good(tmp_path, tiny_checkpoint, monkeypatch):
    out = str(tmp_path / 'out')
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '64', '96']) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(onnx_export, 'write_export_meta', interrupted)  # models moved, meta.json not yet written
    assert main(['onnx', TINY_CONFIG, tiny_checkpoint, '--out', out, '--image-size', '72', '80', '--no-verify']) == 130
    assert sorted(os.listdir(out)) == ['backbone.onnx', 'propagate.onnx']  # no temp files, no meta.json
    with pytest.raises(ExportFormatError, match='meta.json: missing'):
        load_export_meta(out)


def test_load_export_meta_refuses_stale_or_inconsistent_folders(tmp_path, fixed_export):
    folder = str(tmp_path / 'copy')
    os.makedirs(folder)
    for name in os.listdir(fixed_export):
        with open(os.path.join(fixed_export, name), 'rb') as src, open(os.path.join(folder, name), 'wb') as dst:
            dst.write(src.read())
    meta_path = os.path.join(folder, 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)

    def write(values):
        with open(meta_path, 'w') as f:
            json.dump(values, f)

    write({**meta, 'format_version': 99})
    with pytest.raises(ExportFormatError, match='format_version 99'):
        load_export_meta(folder)
    write({key: value for key, value in meta.items() if key != 'propagation'})
    with pytest.raises(ExportFormatError, match=r"missing keys \['propagation'\]"):
        load_export_meta(folder)
    write({**meta, 'propagation': {key: value for key, value in meta['propagation'].items() if key != 'topk'}})
    with pytest.raises(ExportFormatError, match=r"propagation must give \['topk'"):
        load_export_meta(folder)
    write({**meta, 'propagation': {**meta['propagation'], 'temperature': 0}})
    with pytest.raises(ExportFormatError, match='temperature must be positive'):
        load_export_meta(folder)
    # An export of format_version 1 (the settings as top-level keys) still reads, with the same settings.
    write({**{key: value for key, value in meta.items() if key != 'propagation'}, **meta['propagation'],
           'format_version': 1})
    assert load_export_meta(folder).settings == load_export_meta(fixed_export).settings
    # An export of format_version 2 predates dilution_gain, one of version 3 guided upsampling: they read as
    # propagating and decoding without them.
    later = {2: ('dilution_gain', 'guide_radius', 'guide_eps'), 3: ('guide_radius', 'guide_eps')}
    for version, absent in later.items():
        write({**meta, 'propagation': {key: value for key, value in meta['propagation'].items() if key not in absent},
               'format_version': version})
        assert load_export_meta(folder).settings == load_export_meta(fixed_export).settings
    write({**meta, 'num_labels': NUM_LABELS + 1})  # the models were exported for NUM_LABELS
    with pytest.raises(ExportFormatError, match=r'propagate.onnx does not match meta.json: context_labels has shape'):
        load_export_meta(folder)
    write(meta)
    with open(os.path.join(folder, 'propagate.onnx'), 'ab') as f:
        f.write(b'\0')
    with pytest.raises(ExportFormatError, match='propagate.onnx: SHA-256 differs'):
        load_export_meta(folder)
    os.remove(os.path.join(folder, 'backbone.onnx'))
    with pytest.raises(ExportFormatError, match='backbone.onnx: missing'):
        load_export_meta(folder)


@pytest.mark.slow
def test_full_sfc_config_export(tmp_path):
    """MoCo R50 + FC R18 (1280 channels), topk 15, context 20, radius 15: random weights, 240x432."""
    checkpoint = make_checkpoint(FULL_CONFIG, str(tmp_path / 'full.pth'))
    out = str(tmp_path / 'full')
    assert main(['onnx', FULL_CONFIG, checkpoint, '--out', out, '--image-size', '240', '432']) == 0
    meta = load_export_meta(out)
    settings = meta.settings
    assert (meta.feat_size, meta.channels, settings.context_len, settings.topk, settings.radius, settings.temperature,
            meta.fine_grained_weight) == ([30, 54], 1280, 20, 15, 15.0, 0.1, 1.75)
    measured = meta.verification['measured']  # the export's own onnxruntime-vs-PyTorch check
    assert measured['propagate']['argmax_agreement'] >= 0.999 and measured['propagate']['max_abs'] <= 1e-4
    model = load_model(FULL_CONFIG, checkpoint)
    image = real_frames((240, 432), 1)
    with torch.no_grad():
        expected = model.backbone(image).numpy()
    actual = onnxruntime_session(os.path.join(out, 'backbone.onnx')).run(None, {'image': image.numpy()})[0]
    assert actual.shape == (1, 1280, 30, 54) and np.abs(actual - expected).max() < 1e-4


EFFICIENTNET_CONFIG = """
model = dict(
    type='PropagationModel',
    backbone=dict(type='SFCBackbone', semantic=dict(type='EfficientNetLite', arch='lite0', out_block=4, pretrained=True),
                  semantic_mean=(0.5, 0.5, 0.5), semantic_std=(0.5, 0.5, 0.5)),
    propagation=dict(topk=5, context_len=2, radius=6, temperature=0.05))
"""


@pytest.mark.slow
@pytest.mark.parametrize('dynamic', [False, True])
def test_efficientnet_export_pads_as_tensorflow_at_every_size(tmp_path, dynamic):
    """TensorFlow-SAME padding depends on each layer's input size; the exported graph must follow
    it at sizes other than the traced one (dynamic) and at odd sizes (static)."""
    config = tmp_path / 'effl0.py'
    config.write_text(EFFICIENTNET_CONFIG)
    size = (240, 432) if dynamic else (241, 433)
    onnx_export.export_onnx(str(config), None, str(tmp_path / 'out'),
                            onnx_export.ExportOptions(image_size=size, dynamic=dynamic, num_labels=2))
    model, _ = build_model(str(config))  # built and initialised as the export builds it
    session = onnxruntime_session(str(tmp_path / 'out' / 'backbone.onnx'))
    for size in ([(480, 854), (241, 433), (240, 432)] if dynamic else [size]):
        image = real_frames(size, 1)
        with torch.no_grad():
            expected = model.backbone(image).numpy()
        actual = session.run(None, {'image': image.numpy()})[0]
        assert actual.shape == expected.shape == (1, 40, -(-size[0] // 8), -(-size[1] // 8))
        assert np.abs(actual - expected).max() < 1e-4, size


@pytest.mark.slow
def test_export_meta_names_the_dynamic_dims_once(fixed_export, dynamic_export):
    """ExportMeta.dynamic_axes (what the export traces and the TensorRT check allows) follows io_shapes, and the
    written backbone.onnx has exactly those dims dynamic."""
    meta, fixed = load_export_meta(dynamic_export), load_export_meta(fixed_export)
    assert meta.dynamic_axes('backbone') == {'image': {2: 'height', 3: 'width'},
                                             'features': {2: 'feat_height', 3: 'feat_width'}}
    assert meta.dynamic_axes('backbone', inputs_only=True) == {'image': {2: 'height', 3: 'width'}}
    assert meta.dynamic_axes('propagate') == {} and fixed.dynamic_axes('backbone') == {}
    for folder, expected in ((dynamic_export, meta), (fixed_export, fixed)):
        graph = onnx.load(os.path.join(folder, 'backbone.onnx')).graph
        for value in list(graph.input) + list(graph.output):
            named = {axis: dim.dim_param for axis, dim in enumerate(value.type.tensor_type.shape.dim) if dim.dim_param}
            assert named == expected.dynamic_axes('backbone').get(value.name, {})


def test_a_model_without_first_frame_padding_is_refused_by_the_export_and_by_the_runtime(tmp_path, fixed_export,
                                                                                         tiny_checkpoint):
    """One rule (``PropagationSettings.check_fixed_context``): the export refuses the model before writing anything,
    and an export folder whose meta.json says pad_with_first=false (edited by hand) is refused when loaded."""
    from sfc_plugin.runtime.backends import OnnxRuntimeBackend
    out = str(tmp_path / 'unpadded')
    with pytest.raises(ValueError, match='pad_with_first is false.*torch backend'):
        onnx_export.export_onnx(TINY_CONFIG, tiny_checkpoint, out, onnx_export.ExportOptions(image_size=(64, 96)),
                                cfg_options={'model.propagation.pad_with_first': False})
    assert not os.path.exists(out) or os.listdir(out) == []
    folder = str(tmp_path / 'copy')
    os.makedirs(folder)
    for name in os.listdir(fixed_export):
        with open(os.path.join(fixed_export, name), 'rb') as src, open(os.path.join(folder, name), 'wb') as dst:
            dst.write(src.read())
    with open(os.path.join(folder, 'meta.json')) as f:
        meta = json.load(f)
    meta['propagation']['pad_with_first'] = False
    with open(os.path.join(folder, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    with pytest.raises(ExportFormatError, match=r'meta.json: pad_with_first is false'):
        OnnxRuntimeBackend(folder)
