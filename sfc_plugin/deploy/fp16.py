"""FP16 versions of exported ONNX graphs, with the numerically sensitive ops kept in FP32.

TensorRT 11 builds strongly typed networks only, so FP16 has to be decided in the ONNX graph. Each node
gets a precision, in graph order:

- ``FP16_OPS`` (convolutions and matrix products, the bulk of the work) run in FP16;
- ``FOLLOW_OPS`` (activations, pooling, residual additions, reshapes, gathers...) run in FP16 when every
  non-constant float input is already FP16, else in FP32;
- everything else runs in FP32: the input normalisation (Sub, Div), the L2 normalisation (ReduceL2, Clip
  with its 1e-12 epsilon, which FP16 would flush to zero, Div), Softmax, TopK, reductions, Cast.

A Cast is inserted wherever a tensor's type differs from what its consumer runs in (one Cast per tensor
and type); float constants used by FP16 nodes get FP16 copies (finite values clamped to +-65504). Graph
inputs and outputs stay FP32, so an FP16 model is a drop-in replacement for the FP32 one.
"""
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)

FP16_OPS = frozenset({'Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'Einsum'})
FOLLOW_OPS = frozenset({
    'Add', 'AveragePool', 'BatchNormalization', 'Concat', 'Expand', 'Flatten', 'Gather', 'GatherElements',
    'GlobalAveragePool', 'Identity', 'LeakyRelu', 'MaxPool', 'Mul', 'Pad', 'Relu', 'Reshape', 'Resize',
    'Sigmoid', 'Slice', 'Split', 'Squeeze', 'Tile', 'Transpose', 'Unsqueeze', 'Where'})
# Ops that accept inputs of any type as they are.
ANY_TYPE_OPS = frozenset({'Cast', 'CastLike', 'Shape', 'Size'})
# Float inputs whose type the operator fixes, whatever the data type (Resize's roi and scales).
FIXED_FLOAT_INPUTS = {'Resize': (1, 2)}


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return an FP16 copy of an FP32 ``model`` (see the module docstring); ``model`` is not changed."""
    for node in model.graph.node:
        if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
            raise ValueError(f'node {node.name or node.op_type} ({node.op_type}) has a subgraph; '
                             'FP16 conversion supports flat graphs only')
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    elem_type = {v.name: v.type.tensor_type.elem_type
                 for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)}
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Constant' and node.attribute[0].name == 'value':
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for name, value in constants.items():
        elem_type[name] = helper.np_dtype_to_tensor_dtype(value.dtype)

    converter = _Converter(elem_type, constants)
    for node in model.graph.node:
        converter.add(node)
    nodes, new_initializers = converter.finish([v.name for v in model.graph.output])

    # FP32 constants now read only through their FP16 copies are dropped.
    used = {name for node in nodes for name in node.input} | {v.name for v in model.graph.output}
    nodes = [node for node in nodes if node.op_type != 'Constant' or node.output[0] in used]
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    initializers = [init for init in model.graph.initializer if init.name in used] + new_initializers
    del result.graph.initializer[:]
    result.graph.initializer.extend(initializers)
    del result.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(result, strict_mode=True)


class _Converter:
    """Rewrites nodes one at a time, tracking the current element type of every tensor."""

    def __init__(self, elem_type: Dict[str, int], constants: Dict[str, np.ndarray]) -> None:
        self.elem_type = dict(elem_type)
        self.constants = constants
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self.casts: Dict[Tuple[str, int], str] = {}  # (tensor, type) -> name of the cast/copy

    def _type(self, name: str) -> int:
        if name not in self.elem_type:
            raise ValueError(f'cannot convert to FP16: the type of tensor {name!r} is unknown')
        return self.elem_type[name]

    def _is_float(self, name: str) -> bool:
        return bool(name) and self._type(name) in (FLOAT, FLOAT16)

    def _precision(self, node: onnx.NodeProto) -> int:
        if node.op_type in FP16_OPS:
            return FLOAT16
        if node.op_type in FOLLOW_OPS:
            fixed = FIXED_FLOAT_INPUTS.get(node.op_type, ())
            data = [name for i, name in enumerate(node.input)
                    if i not in fixed and self._is_float(name) and name not in self.constants]
            if data and all(self._type(name) == FLOAT16 for name in data):
                return FLOAT16
        return FLOAT

    def _as_type(self, name: str, target: int) -> str:
        """Name of ``name`` in type ``target``: itself, an FP16 copy of a constant, or a Cast's output."""
        if self._type(name) == target:
            return name
        key = (name, target)
        if key not in self.casts:
            if name in self.constants:
                value = self.constants[name]
                if target == FLOAT16:
                    value = np.where(np.isfinite(value), np.clip(value, -FP16_MAX, FP16_MAX), value)
                copy = f'{name}__{"fp16" if target == FLOAT16 else "fp32"}'
                self.initializers.append(numpy_helper.from_array(value.astype(helper.tensor_dtype_to_np_dtype(target)),
                                                                 copy))
                self.constants[copy] = value
            else:
                copy = f'{name}__cast_{"fp16" if target == FLOAT16 else "fp32"}'
                self.nodes.append(helper.make_node('Cast', [name], [copy], to=target, name=f'{copy}_node'))
            self.elem_type[copy] = target
            self.casts[key] = copy
        return self.casts[key]

    def add(self, node: onnx.NodeProto) -> None:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        if node.op_type == 'Constant' or node.op_type in ANY_TYPE_OPS:
            self.nodes.append(new)
            return
        precision = self._precision(node)
        fixed = FIXED_FLOAT_INPUTS.get(node.op_type, ())
        for i, name in enumerate(node.input):
            if i not in fixed and self._is_float(name):
                new.input[i] = self._as_type(name, precision)
        if precision == FLOAT16:
            for name in node.output:
                if name and self.elem_type.get(name) == FLOAT:
                    self.elem_type[name] = FLOAT16
        self.nodes.append(new)

    def finish(self, graph_outputs: List[str]) -> Tuple[List[onnx.NodeProto], List[onnx.TensorProto]]:
        """The converted nodes, with FP16 graph outputs cast back to FP32, and the new initializers."""
        for name in graph_outputs:
            if self.elem_type.get(name) != FLOAT16:
                continue
            renamed = f'{name}__fp16'
            for node in self.nodes:
                node.output[:] = [renamed if out == name else out for out in node.output]
                node.input[:] = [renamed if inp == name else inp for inp in node.input]
            self.nodes.append(helper.make_node('Cast', [renamed], [name], to=FLOAT, name=f'{name}__cast_output'))
        return self.nodes, self.initializers
