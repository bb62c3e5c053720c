"""The TensorRT-compatibility check: exported models pass; unsupported ops and attributes fail, naming the node."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sfc_plugin.deploy import check_tensorrt_compatibility
from sfc_plugin.deploy.cli import main
from sfc_plugin.deploy.trt_compat import SUPPORTED_OPS
from test_export_onnx import TINY_CONFIG, make_checkpoint


def single_node_model(node: onnx.NodeProto, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph([node], 'g', inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], ir_version=8)


def tensor(name: str, shape, elem_type=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def topk_model(k: int, sorted_: int = 1, k_constant: bool = True) -> onnx.ModelProto:
    node = helper.make_node('TopK', ['x', 'k'], ['values', 'indices'], name='select', axis=1, sorted=sorted_)
    inputs = [tensor('x', [2, 5000])] + ([] if k_constant else [tensor('k', [1], TensorProto.INT64)])
    initializers = [numpy_helper.from_array(np.array([k], np.int64), 'k')] if k_constant else []
    return single_node_model(node, inputs, [tensor('values', [2, k]), tensor('indices', [2, k], TensorProto.INT64)],
                             initializers)


@pytest.fixture(scope='module')
def exports(tmp_path_factory) -> dict:
    """Tiny exports: fixed FP32, dynamic FP32 and fixed FP16."""
    root = tmp_path_factory.mktemp('exports')
    checkpoint = make_checkpoint(TINY_CONFIG, str(root / 'tiny.pth'))
    folders = {}
    for name, options in (('fixed', []), ('dynamic', ['--dynamic']), ('fp16', ['--fp16', '--fp16-propagate'])):
        folders[name] = str(root / name)
        assert main(['onnx', TINY_CONFIG, checkpoint, '--out', folders[name], '--image-size', '64', '96',
                     '--num-labels', '3', '--no-verify', *options]) == 0
    return folders


@pytest.mark.slow
def test_exported_models_pass(exports):
    for name, folder in exports.items():
        for model in ('backbone', 'propagate'):
            allowed = {'image': (2, 3)} if name == 'dynamic' and model == 'backbone' else {}
            report = check_tensorrt_compatibility(os.path.join(folder, f'{model}.onnx'), allowed)
            assert report.ok, report.summary(f'{name}/{model}')
            assert report.dynamic_dims == ({'image': [2, 3]} if allowed else {})
    assert main(['check', exports['dynamic'], os.path.join(exports['fp16'], 'propagate.onnx')]) == 0


@pytest.mark.parametrize('op_type', ['Col2Im', 'Unique'])
def test_unsupported_op_fails_naming_the_node(op_type, tmp_path, capsys):
    if op_type == 'Col2Im':
        node = helper.make_node('Col2Im', ['x', 'image_shape', 'block_shape'], ['y'], name='fold_patches')
        initializers = [numpy_helper.from_array(np.array([4, 4], np.int64), 'image_shape'),
                        numpy_helper.from_array(np.array([2, 2], np.int64), 'block_shape')]
        model = single_node_model(node, [tensor('x', [1, 4, 9])], [tensor('y', [1, 1, 4, 4])], initializers, 18)
    else:
        node = helper.make_node('Unique', ['x'], ['y'], name='fold_patches')
        model = single_node_model(node, [tensor('x', [1, 4])], [tensor('y', [None])])
    report = check_tensorrt_compatibility(model)
    assert not report.ok
    assert any("node 'fold_patches'" in error and f'({op_type})' in error and 'not supported' in error
               for error in report.errors)
    path = str(tmp_path / 'bad.onnx')
    onnx.save(model, path)
    assert main(['check', path]) == 1
    assert "node 'fold_patches'" in capsys.readouterr().out


def test_support_table():
    assert {'Conv', 'MatMul', 'TopK', 'GatherElements', 'Softmax', 'ReduceL2', 'Pad', 'Resize'} <= set(SUPPORTED_OPS)
    assert not {'Col2Im', 'Unique', 'DFT', 'Compress', 'StringNormalizer'} & set(SUPPORTED_OPS)
    assert SUPPORTED_OPS['Not'] == {'BOOL'} and 'FP16' in SUPPORTED_OPS['Conv'] and 'INT64' in SUPPORTED_OPS['Gather']


def test_topk_restrictions():
    assert check_tensorrt_compatibility(topk_model(3839)).ok
    assert any('K = 3840 must be less than 3840' in e for e in check_tensorrt_compatibility(topk_model(3840)).errors)
    assert any('sorted must be 1' in e for e in check_tensorrt_compatibility(topk_model(5, sorted_=0)).errors)
    assert any("K must be a build-time constant" in e
               for e in check_tensorrt_compatibility(topk_model(5, k_constant=False)).errors)


@pytest.mark.parametrize('attributes, message', [
    (dict(mode='cubic'), "mode 'cubic'"),
    (dict(mode='linear', coordinate_transformation_mode='tf_crop_and_resize'), 'coordinate_transformation_mode'),
    (dict(mode='linear', antialias=1), 'antialias'),
    (dict(mode='linear'), None),
])
def test_resize_attributes(attributes, message):
    node = helper.make_node('Resize', ['x', '', 'scales'], ['y'], name='upsample', **attributes)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), 'scales')
    report = check_tensorrt_compatibility(single_node_model(node, [tensor('x', [1, 3, 4, 4])],
                                                            [tensor('y', [1, 3, 8, 8])], [scales], opset=18))
    if message is None:
        assert report.ok, report.errors
    else:
        assert any("node 'upsample'" in e and message in e for e in report.errors)


def test_pad_modes_and_non_constant_axes():
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), 'pads')
    for mode, ok in (('reflect', True), ('edge', True), ('constant', True)):
        node = helper.make_node('Pad', ['x', 'pads'], ['y'], name='pad', mode=mode)
        report = check_tensorrt_compatibility(single_node_model(node, [tensor('x', [1, 3, 4, 4])],
                                                                [tensor('y', [1, 3, 6, 6])], [pads]))
        assert report.ok == ok, report.errors
    node = helper.make_node('ReduceSum', ['x', 'axes'], ['y'], name='sum_over_runtime_axes')
    report = check_tensorrt_compatibility(single_node_model(
        node, [tensor('x', [2, 3]), tensor('axes', [1], TensorProto.INT64)], [tensor('y', None)]))
    assert any("'sum_over_runtime_axes'" in e and 'axes must be a build-time constant' in e for e in report.errors)


def test_graph_level_checks():
    # a batch axis left dynamic where only height and width may be
    node = helper.make_node('Relu', ['x'], ['y'], name='relu')
    model = single_node_model(node, [tensor('x', ['batch', 3, 'height', 'width'])],
                              [tensor('y', ['batch', 3, 'height', 'width'])])
    report = check_tensorrt_compatibility(model, {'x': (2, 3)})
    assert report.errors == ["input 'x' axis 0 is dynamic (batch) where a fixed size is expected"]
    assert report.dynamic_dims == {'x': [0, 2, 3]}
    assert check_tensorrt_compatibility(model).ok  # any input dim may be dynamic without a list

    model = single_node_model(node, [helper.make_tensor_value_info('x', TensorProto.FLOAT, None)], [tensor('y', None)])
    assert any('unknown rank' in e for e in check_tensorrt_compatibility(model).errors)

    model = single_node_model(node, [tensor('x', [1, 4])], [tensor('y', [1, 4])], opset=21)
    assert any('opset 21' in e for e in check_tensorrt_compatibility(model).errors)

    custom = helper.make_node('MyOp', ['x'], ['y'], name='plugin_op', domain='com.example')
    model = single_node_model(custom, [tensor('x', [1, 4])], [tensor('y', [1, 4])])
    model.opset_import.append(helper.make_opsetid('com.example', 1))
    assert any("'plugin_op'" in e and 'TensorRT plugin' in e for e in check_tensorrt_compatibility(model).errors)

    add = helper.make_node('Add', ['x', 'offset'], ['y'], name='add')
    offset = numpy_helper.from_array(np.ones(4), 'offset')  # float64
    model = single_node_model(add, [tensor('x', [1, 4], TensorProto.DOUBLE)], [tensor('y', [1, 4], TensorProto.DOUBLE)],
                              [offset])
    report = check_tensorrt_compatibility(model)
    assert any("'offset' is DOUBLE" in w for w in report.warnings)
    assert any("'add'" in e and 'input type DOUBLE' in e for e in report.errors)

    deep = [1] * 9
    model = single_node_model(node, [tensor('x', deep)], [tensor('y', deep)])
    assert any('rank 9 > 8' in e for e in check_tensorrt_compatibility(model).errors)


def test_check_command_errors(tmp_path, capsys):
    assert main(['check', str(tmp_path / 'missing.onnx')]) == 1
    assert 'no such ONNX file' in capsys.readouterr().err
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a protobuf')
    assert main(['check', str(garbage)]) == 1
    assert 'cannot read it as an ONNX model' in capsys.readouterr().err
