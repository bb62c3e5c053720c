"""Will TensorRT's ONNX parser take this graph? A check that needs only ``onnx`` (no TensorRT, no GPU).

The supported operators and their types are those of the ONNX-TensorRT parser's support matrix,
https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md ("TensorRT 10.15 supports operators in
the inclusive range of opset 9 to opset 24"); the attribute restrictions follow that table and the
parser's static checkers and importers (onnxOpCheckers.cpp, onnxOpImporters.cpp of the same repository).
Only operators marked "Y" there are listed. TensorRT 10.0 accepts opsets 9 to 20, so graphs for every
TensorRT 10.x and 11.x parser stay within that range.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Set, Union

import onnx
from onnx import TensorProto, numpy_helper

OPSET_RANGE = (9, 20)
MAX_IR_VERSION = 10  # ONNX 1.16, the one TensorRT 10.0's parser is built with
TOPK_MAX_K = 3840  # "K input must be less than 3840"
MAX_RANK = 8  # nvinfer1::Dims::MAX_DIMS

_F = 'FP32 FP16 BF16'
_I = 'INT32 INT64'
_ALL = f'{_F} {_I} BOOL'
# operator: supported types (onnx-tensorrt docs/operators.md, TensorRT 10.15).
_SUPPORT_TABLE = f"""
Abs: {_F} {_I} | Acos: {_F} | Acosh: {_F} | Add: {_F} {_I} | And: BOOL | ArgMax: {_F} {_I} | ArgMin: {_F} {_I}
Asin: {_F} | Asinh: {_F} | Atan: {_F} | Atanh: {_F} | Attention: {_F} INT8 FP8 | AveragePool: {_F}
BatchNormalization: {_F} | BlackmanWindow: FP32 FP16 | Cast: {_F} {_I} UINT8 BOOL | CastLike: {_F} {_I} UINT8 BOOL
Ceil: {_F} | Celu: {_F} | Clip: {_F} | Concat: {_ALL} | Constant: {_ALL} FP8 FP4 INT4
ConstantOfShape: {_ALL} FP8 FP4 INT4 | Conv: {_F} | ConvTranspose: {_F} | Cos: {_F} | Cosh: {_F} | CumSum: {_F}
DeformConv: FP32 FP16 | DepthToSpace: {_F} {_I} | DequantizeLinear: INT8 FP8 FP4 INT4 | Div: {_F} {_I}
Dropout: {_F} | Einsum: {_F} | Elu: {_F} | Equal: {_F} {_I} | Erf: {_F} | Exp: {_F} | Expand: {_ALL}
EyeLike: {_ALL} | Flatten: {_ALL} | Floor: {_F} | Gather: {_ALL} | GatherElements: {_ALL} | GatherND: {_ALL}
Gelu: {_F} INT8 {_I} | Gemm: {_F} | GlobalAveragePool: {_F} | GlobalLpPool: {_F} | GlobalMaxPool: {_F}
Greater: {_F} {_I} | GreaterOrEqual: {_F} {_I} | GridSample: FP32 FP16 | GroupNormalization: {_F} | GRU: {_F}
HammingWindow: FP32 FP16 | HannWindow: FP32 FP16 | HardSigmoid: {_F} | HardSwish: {_F} | Hardmax: {_F}
Identity: {_ALL} | If: {_ALL} | ImageScaler: {_F} | InstanceNormalization: {_F} | IsInf: {_F} | IsNaN: {_F} {_I}
LayerNormalization: {_F} | LeakyRelu: {_F} | Less: {_F} {_I} | LessOrEqual: {_F} {_I} | Log: {_F}
LogSoftmax: {_F} | Loop: {_ALL} | LRN: {_F} | LSTM: {_F} | LpNormalization: {_F} | LpPool: {_F} | MatMul: {_F}
Max: {_F} {_I} | MaxPool: {_F} | Mean: {_F} FP8 {_I} | MeanVarianceNormalization: {_F} | Min: {_F} {_I}
Mish: FP32 FP16 | Mod: {_F} {_I} | Mul: {_F} {_I} | Neg: {_F} {_I} | NonMaxSuppression: FP32 FP16
NonZero: FP32 FP16 | Not: BOOL | OneHot: {_ALL} | Or: BOOL | Pad: {_F} {_I} | ParametricSoftplus: {_F}
Pow: {_F} {_I} | PRelu: {_F} | QuantizeLinear: {_F} | RandomNormal: {_F} | RandomNormalLike: {_F}
RandomUniform: {_F} | RandomUniformLike: {_F} | Range: {_F} {_I} | Reciprocal: {_F} | ReduceL1: {_F} {_I}
ReduceL2: {_F} {_I} | ReduceLogSum: {_F} {_I} | ReduceLogSumExp: {_F} {_I} | ReduceMax: {_F} {_I}
ReduceMean: {_F} {_I} | ReduceMin: {_F} {_I} | ReduceProd: {_F} {_I} | ReduceSum: {_F} {_I}
ReduceSumSquare: {_F} {_I} | Relu: {_F} {_I} | Reshape: {_ALL} | Resize: {_F} | ReverseSequence: {_ALL}
RMSNormalization: {_F} | RNN: {_F} | RoiAlign: FP32 FP16 | RotaryEmbedding: {_F} | Round: {_F} | STFT: FP32
ScaledTanh: {_F} | Scan: {_F} | Scatter: {_F} {_I} | ScatterElements: {_F} {_I} | ScatterND: {_F} {_I}
Selu: {_F} | Shape: {_ALL} | Shrink: {_F} {_I} | Sigmoid: {_F} | Sign: {_F} {_I} | Sin: {_F} | Sinh: {_F}
Size: {_ALL} | Slice: {_ALL} | Softmax: {_F} | Softplus: {_F} | Softsign: {_F} | SpaceToDepth: {_F} {_I}
Split: {_ALL} | Sqrt: {_F} | Squeeze: {_ALL} | Sub: {_F} {_I} | Sum: {_F} {_I} | Tan: {_F} | Tanh: {_F}
TensorScatter: {_F} INT32 | ThresholdedRelu: {_F} | Tile: {_ALL} | TopK: {_F} {_I} | Transpose: {_ALL}
Trilu: {_ALL} | Unsqueeze: {_ALL} | Upsample: {_F} | Where: {_ALL} | Xor: BOOL
"""
SUPPORTED_OPS: Dict[str, Set[str]] = {
    op.strip(): set(types.split())
    for entry in _SUPPORT_TABLE.replace('\n', '|').split('|') if entry.strip()
    for op, types in [entry.split(':')]
}
# ONNX element types under the names the table uses.
TYPE_NAMES = {TensorProto.FLOAT: 'FP32', TensorProto.FLOAT16: 'FP16', TensorProto.BFLOAT16: 'BF16',
              TensorProto.INT32: 'INT32', TensorProto.INT64: 'INT64', TensorProto.BOOL: 'BOOL',
              TensorProto.INT8: 'INT8', TensorProto.UINT8: 'UINT8', TensorProto.DOUBLE: 'DOUBLE',
              TensorProto.FLOAT8E4M3FN: 'FP8', TensorProto.INT4: 'INT4'}
# Initializer types the parser imports (DOUBLE is cast down to FLOAT, with clamping).
INITIALIZER_TYPES = {'FP32', 'FP16', 'BF16', 'INT32', 'INT64', 'INT8', 'UINT8', 'BOOL', 'FP8', 'INT4'}
# Which input carries the type the table lists (input 0 unless said here).
TYPED_INPUT = {'Where': 1}
# Inputs that must be build-time constants (initializers or Constant outputs): op -> {index: name}.
CONSTANT_INPUTS = {
    'TopK': {1: 'K'}, 'CumSum': {1: 'axis'}, 'OneHot': {1: 'depth'}, 'Squeeze': {1: 'axes'},
    'Unsqueeze': {1: 'axes'},
    **{op: {1: 'axes'} for op in ('ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax',
                                  'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare')},
}
RESIZE_MODES = {'nearest', 'linear'}
RESIZE_COORDINATES = {'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn', 'asymmetric', 'align_corners'}
RESIZE_NEAREST = {'floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil'}
PAD_MODES = {'constant', 'reflect', 'edge', 'wrap'}
ONNX_DOMAINS = ('', 'ai.onnx')


@dataclass
class CompatibilityReport:
    """Result of :func:`check_tensorrt_compatibility`.

    Attributes:
        errors: what the parser would reject, each naming the node or tensor.
        warnings: what it accepts with a conversion (e.g. DOUBLE cast down to FLOAT).
        dynamic_dims: ``{input: [axis, ...]}`` dims an optimization profile must cover.
    """
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    dynamic_dims: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, source: str) -> str:
        lines = [f'{source}: ' + ('TensorRT-compatible' if self.ok else f'{len(self.errors)} problem(s) for TensorRT')]
        lines += [f'  error: {error}' for error in self.errors]
        lines += [f'  warning: {warning}' for warning in self.warnings]
        if self.dynamic_dims:
            lines.append('  dynamic dims (need an optimization profile): '
                         + ', '.join(f'{name} axes {axes}' for name, axes in self.dynamic_dims.items()))
        return '\n'.join(lines)


def check_tensorrt_compatibility(model: Union[str, onnx.ModelProto],
                                 allowed_dynamic: Optional[Dict[str, Sequence[int]]] = None) -> CompatibilityReport:
    """Check an ONNX model against the TensorRT ONNX parser's operator support and restrictions.

    Args:
        model: an ``onnx.ModelProto`` or the path of an ``.onnx`` file.
        allowed_dynamic: ``{input: axes}`` that may be dynamic (covered by the engine's optimization
            profile); other dynamic input dims are errors. None allows dynamic dims on any input.
    """
    if isinstance(model, str):
        try:
            model = onnx.load(model)
        except Exception as error:  # protobuf DecodeError, OSError, ...
            raise ValueError(f'{model}: cannot read it as an ONNX model ({error})') from error
    report = CompatibilityReport()
    opset = next((o.version for o in model.opset_import if o.domain in ONNX_DOMAINS), None)
    if opset is None or not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        report.errors.append(f'opset {opset} is outside {OPSET_RANGE[0]}..{OPSET_RANGE[1]}, the range every '
                             'TensorRT 10/11 ONNX parser accepts')
    if model.ir_version > MAX_IR_VERSION:
        report.warnings.append(f'IR version {model.ir_version} is newer than {MAX_IR_VERSION} (ONNX 1.16, used by '
                               'TensorRT 10.0): older TensorRT 10 parsers may refuse the model')
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except onnx.shape_inference.InferenceError as error:
        report.errors.append(f'ONNX shape inference fails: {error}')
        inferred = model
    values = {v.name: v.type.tensor_type
              for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)}
    constants = {init.name: init for init in model.graph.initializer}
    for node in _all_nodes(model.graph):
        if node.op_type == 'Constant' and node.attribute and node.attribute[0].name == 'value':
            constants[node.output[0]] = node.attribute[0].t

    _check_inputs(model, allowed_dynamic, report)
    for init in model.graph.initializer:
        type_name = TYPE_NAMES.get(init.data_type, TensorProto.DataType.Name(init.data_type))
        if type_name == 'DOUBLE':
            report.warnings.append(f'initializer {init.name!r} is DOUBLE: TensorRT casts it to FLOAT')
        elif type_name not in INITIALIZER_TYPES:
            report.errors.append(f'initializer {init.name!r} has type {type_name}, which TensorRT cannot import')
    for name, tensor_type in values.items():
        if tensor_type.HasField('shape') and len(tensor_type.shape.dim) > MAX_RANK:
            report.errors.append(f'tensor {name!r} has rank {len(tensor_type.shape.dim)} > {MAX_RANK}')
    for node in _all_nodes(model.graph):
        for problem in _node_problems(node, values, constants):
            report.errors.append(f'node {node.name or "(unnamed)"!r} ({node.op_type}): {problem}')
    return report


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Nodes of ``graph`` and of its subgraphs (If, Loop, Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for subgraph in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _all_nodes(subgraph)


def _check_inputs(model: onnx.ModelProto, allowed_dynamic: Optional[Dict[str, Sequence[int]]],
                  report: CompatibilityReport) -> None:
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField('shape'):
            report.errors.append(f'input {value.name!r} has no shape (unknown rank): no optimization profile '
                                 'can cover it')
            continue
        dynamic = []
        for axis, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField('dim_value') and dim.dim_value > 0:
                continue
            if dim.HasField('dim_value'):
                report.errors.append(f'input {value.name!r} axis {axis} has size {dim.dim_value}')
                continue
            dynamic.append(axis)
            if allowed_dynamic is not None and axis not in allowed_dynamic.get(value.name, ()):
                report.errors.append(f'input {value.name!r} axis {axis} is dynamic ({dim.dim_param or "unnamed"}) '
                                     'where a fixed size is expected')
        if dynamic:
            report.dynamic_dims[value.name] = dynamic


def _attr(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _node_problems(node: onnx.NodeProto, values: dict, constants: dict) -> Iterator[str]:
    if node.domain not in ONNX_DOMAINS:
        yield f'custom domain {node.domain!r} needs a TensorRT plugin'
        return
    if node.op_type not in SUPPORTED_OPS:
        yield 'operator not supported by the TensorRT ONNX parser'
        return
    typed = TYPED_INPUT.get(node.op_type, 0)
    if len(node.input) > typed and node.input[typed] in values:
        elem_type = values[node.input[typed]].elem_type
        type_name = TYPE_NAMES.get(elem_type, TensorProto.DataType.Name(elem_type))
        if elem_type != TensorProto.UNDEFINED and type_name not in SUPPORTED_OPS[node.op_type]:
            yield f'input type {type_name} not supported (TensorRT: {" ".join(sorted(SUPPORTED_OPS[node.op_type]))})'
    for index, role in CONSTANT_INPUTS.get(node.op_type, {}).items():
        if len(node.input) > index and node.input[index] and node.input[index] not in constants:
            yield f'{role} must be a build-time constant (initializer or Constant), got tensor {node.input[index]!r}'
    yield from _attribute_problems(node, constants)


def _attribute_problems(node: onnx.NodeProto, constants: dict) -> Iterator[str]:
    op = node.op_type
    if op == 'TopK':
        if _attr(node, 'sorted', 1) != 1:
            yield 'sorted must be 1'
        if len(node.input) > 1 and node.input[1] in constants:
            k = int(numpy_helper.to_array(constants[node.input[1]]).reshape(-1)[0])
            if k >= TOPK_MAX_K:
                yield f'K = {k} must be less than {TOPK_MAX_K}'
    elif op == 'Resize':
        mode = _text(_attr(node, 'mode', 'nearest'))
        coordinates = _text(_attr(node, 'coordinate_transformation_mode', 'half_pixel'))
        nearest = _text(_attr(node, 'nearest_mode', 'round_prefer_floor'))
        if mode not in RESIZE_MODES:
            yield f'mode {mode!r} not in {sorted(RESIZE_MODES)}'
        if coordinates not in RESIZE_COORDINATES:
            yield f'coordinate_transformation_mode {coordinates!r} not in {sorted(RESIZE_COORDINATES)}'
        if nearest not in RESIZE_NEAREST:
            yield f'nearest_mode {nearest!r} not in {sorted(RESIZE_NEAREST)}'
        if _attr(node, 'antialias', 0):
            yield 'antialias is not supported'
        if _text(_attr(node, 'keep_aspect_ratio_policy', 'stretch')) != 'stretch':
            yield 'only keep_aspect_ratio_policy "stretch" is supported'
    elif op == 'Pad':
        mode = _text(_attr(node, 'mode', 'constant'))
        if mode not in PAD_MODES:
            yield f'mode {mode!r} not in {sorted(PAD_MODES)}'
    elif op in ('MaxPool', 'AveragePool', 'LpPool'):
        if any(d != 1 for d in _attr(node, 'dilations', [])):
            yield 'dilations other than 1 are not supported'
        if op == 'MaxPool' and len(node.output) > 1 and node.output[1]:
            yield 'the Indices output is not supported'
    elif op in ('BatchNormalization', 'LayerNormalization'):
        if _attr(node, 'training_mode', 0):
            yield 'training_mode is not supported'
        if any(node.output[1:]):
            yield 'only the first output is supported'
    elif op == 'LpNormalization' and _attr(node, 'p', 2) not in (1, 2):
        yield 'only p = 1 or 2 is supported'
    elif op == 'Cast' and TYPE_NAMES.get(_attr(node, 'to', 0)) not in SUPPORTED_OPS['Cast']:
        yield f'cast to {TensorProto.DataType.Name(_attr(node, "to", 0))} is not supported'
    elif op == 'Constant' and any(a.name in ('sparse_value', 'value_string', 'value_strings') for a in node.attribute):
        yield 'sparse and string constants are not supported'
