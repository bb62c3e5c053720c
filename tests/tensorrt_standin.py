"""A stand-in for the ``tensorrt`` module of TensorRT 10 or 11 that records every call, so that the engine
build and run code runs on a CPU.

Names, parameter names and return types follow NVIDIA's Python bindings (pybind11 sources in NVIDIA/TensorRT:
``python/src/infer/pyCore.cpp``, ``pyFoundationalTypes.cpp``, ``python/src/parsers/pyOnnx.cpp``; the
"10.x to 11.x Python API" migration pages for what 11 removed). What matters for the code under test:

- ``IBuilderConfig.set_timing_cache(cache, ignore_mismatch) -> bool`` (False for a cache of another TensorRT
  version or device), ``get_timing_cache() -> ITimingCache | None``,
  ``create_timing_cache(serialized_timing_cache) -> ITimingCache``, ``add_optimization_profile(profile) -> int``;
- ``IExecutionContext.set_input_shape(name, shape) -> bool``, ``set_tensor_address(name, memory) -> bool``,
  ``execute_async_v3(stream_handle) -> bool``, ``get_tensor_shape(name) -> Dims``;
- ``Builder.create_network(flags=0)``, ``build_serialized_network(network, config) -> IHostMemory | None``,
  ``Runtime.deserialize_cuda_engine(serialized_engine) -> ICudaEngine | None``;
- TensorRT 11: no ``BuilderFlag.FP16``/``BF16``/``INT8``/``OBEY_PRECISION_CONSTRAINTS``, no
  ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``, no ``Builder.platform_has_fast_fp16``;
  ``STRONGLY_TYPED`` is accepted and ignored (always strongly typed).

The engine "plan" records the ONNX model; executing it runs that model with onnxruntime on the CPU, reading
the inputs from and writing the outputs to the raw addresses given to ``set_tensor_address`` (so a wrong
address, shape or dtype shows up as a wrong result, as on a GPU).
"""
import ctypes
import enum
import functools
import inspect
import json
import types
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx

PLAN_MAGIC = b'STANDIN-PLAN\n'
CACHE_MAGIC = b'STANDIN-CACHE\n'
GPU = 'Stand-in GPU'
DEFAULT_STREAM = 0


def make_tensorrt(version: str) -> types.ModuleType:
    """A fresh stand-in module for TensorRT ``version`` ('10.x.y' or '11.x.y'); ``module.calls`` lists
    ``(name, arguments)`` of every call made to it."""
    major = int(version.split('.')[0])
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    trt.calls = []
    trt.warnings = []

    def recorded(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)  # a TypeError here: the binding has no such parameters
            arguments = dict(bound.arguments)
            owner = arguments.pop('self', None)
            name = f'{type(owner).__name__}.{function.__name__}' if owner is not None else function.__name__
            trt.calls.append((name, arguments))
            return function(*args, **kwargs)
        return wrapper


    builder_flags = ['DEBUG', 'GPU_FALLBACK', 'REFIT', 'DISABLE_TIMING_CACHE', 'TF32', 'SPARSE_WEIGHTS',
                     'VERSION_COMPATIBLE', 'EXCLUDE_LEAN_RUNTIME', 'STRIP_PLAN', 'WEIGHT_STREAMING']
    network_flags = ['STRONGLY_TYPED']
    if major < 11:
        builder_flags += ['FP16', 'BF16', 'INT8', 'FP8', 'OBEY_PRECISION_CONSTRAINTS', 'PREFER_PRECISION_CONSTRAINTS']
        network_flags = ['EXPLICIT_BATCH', 'STRONGLY_TYPED']
    trt.BuilderFlag = enum.IntEnum('BuilderFlag', builder_flags, start=0)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum('NetworkDefinitionCreationFlag', network_flags, start=0)
    trt.MemoryPoolType = enum.IntEnum('MemoryPoolType', ['WORKSPACE', 'DLA_MANAGED_SRAM', 'TACTIC_SHARED_MEMORY'],
                                      start=0)
    trt.TensorIOMode = enum.IntEnum('TensorIOMode', ['NONE', 'INPUT', 'OUTPUT'], start=0)
    trt.DataType = enum.IntEnum('DataType', ['FLOAT', 'HALF', 'INT8', 'INT32', 'BOOL', 'UINT8', 'BF16', 'INT64'],
                                start=0)

    class Logger:
        Severity = enum.IntEnum('Severity', ['INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE'], start=0)
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = Severity

        @recorded
        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg: str) -> None:
            trt.warnings.append(msg)

    class Dims(tuple):
        """``trt.Dims``: a sequence of ints."""

    class ITensor:
        def __init__(self, name: str, shape: Tuple[int, ...]) -> None:
            self.name, self.shape = name, Dims(shape)

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: List[ITensor] = []
            self.outputs: List[ITensor] = []
            self.onnx_path: Optional[str] = None

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        @recorded
        def get_input(self, index: int) -> ITensor:
            return self.inputs[index]

        @recorded
        def get_output(self, index: int) -> ITensor:
            return self.outputs[index]

    class IParserError:
        def __init__(self, desc: str) -> None:
            self._desc = desc

        def desc(self) -> str:
            return self._desc

        def __str__(self) -> str:
            return self._desc

    class OnnxParser:
        @recorded
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self.network, self.errors = network, []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        @recorded
        def get_error(self, index: int) -> IParserError:
            return self.errors[index]

        @recorded
        def parse_from_file(self, model: str) -> bool:
            try:
                graph = onnx.load(model, load_external_data=False).graph
            except Exception as error:  # onnx raises DecodeError, OSError...
                self.errors.append(IParserError(f'cannot read {model}: {error}'))
                return False
            initializers = {init.name for init in graph.initializer}
            self.network.inputs = [ITensor(v.name, _onnx_shape(v)) for v in graph.input if v.name not in initializers]
            self.network.outputs = [ITensor(v.name, _onnx_shape(v)) for v in graph.output]
            self.network.onnx_path = model
            return True

    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: Dict[str, Tuple[tuple, tuple, tuple]] = {}

        @recorded
        def set_shape(self, input: str, min, opt, max) -> None:  # noqa: A002 (the binding's names)
            if not all(low <= mid <= high for low, mid, high in zip(min, opt, max)):
                raise RuntimeError('Shape provided for min is inconsistent with other shapes.')
            self.shapes[input] = (tuple(min), tuple(opt), tuple(max))

    class ITimingCache:
        def __init__(self, header: dict, entries: List[str]) -> None:
            self.header, self.entries = header, entries

        @recorded
        def serialize(self) -> bytes:
            return CACHE_MAGIC + json.dumps({'header': self.header, 'entries': self.entries}).encode()

        @recorded
        def combine(self, input_cache: 'ITimingCache', ignore_mismatch: bool) -> bool:
            if input_cache.header != self.header and not ignore_mismatch:
                return False
            self.entries += input_cache.entries
            return True

        @recorded
        def reset(self) -> bool:
            self.entries = []
            return True

    this_machine = {'tensorrt': version, 'gpu': GPU}

    class IBuilderConfig:
        def __init__(self) -> None:
            self.flags = {trt.BuilderFlag.TF32}  # TF32 is on by default
            self.pools: Dict[int, int] = {}
            self.profiles: List[IOptimizationProfile] = []
            self.timing_cache: Optional[ITimingCache] = None

        @recorded
        def set_memory_pool_limit(self, pool, pool_size: int) -> None:
            self.pools[pool] = pool_size

        @recorded
        def set_flag(self, flag) -> None:
            self.flags.add(flag)

        @recorded
        def clear_flag(self, flag) -> None:
            self.flags.discard(flag)

        @recorded
        def get_flag(self, flag) -> bool:
            return flag in self.flags

        @recorded
        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        @recorded
        def create_timing_cache(self, serialized_timing_cache) -> Optional[ITimingCache]:
            blob = bytes(serialized_timing_cache)
            if not blob:
                return ITimingCache(dict(this_machine), [])
            if not blob.startswith(CACHE_MAGIC):
                return None  # a damaged cache
            content = json.loads(blob[len(CACHE_MAGIC):])
            return ITimingCache(content['header'], content['entries'])

        @recorded
        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            if cache.header != this_machine and not ignore_mismatch:
                self.timing_cache = None
                return False
            self.timing_cache = cache
            return True

        @recorded
        def get_timing_cache(self) -> Optional[ITimingCache]:
            return self.timing_cache

    class Builder:
        @recorded
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        if major < 11:
            platform_has_fast_fp16 = True

        @recorded
        def create_network(self, flags: int = 0) -> INetworkDefinition:
            return INetworkDefinition(flags)

        @recorded
        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        @recorded
        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        @recorded
        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> Optional[bytes]:
            strongly_typed = major >= 11 or bool(network.flags & (1 << int(trt.NetworkDefinitionCreationFlag.
                                                                            STRONGLY_TYPED)))
            fp16 = hasattr(trt.BuilderFlag, 'FP16') and trt.BuilderFlag.FP16 in config.flags
            if strongly_typed and fp16:
                trt.warnings.append('FP16 builder flag on a strongly typed network')
                return None
            profile = config.profiles[0].shapes if config.profiles else {}
            dynamic = [t.name for t in network.inputs if -1 in t.shape]
            if any(name not in profile for name in dynamic):
                trt.warnings.append(f'dynamic inputs {dynamic} without an optimization profile')
                return None
            if config.timing_cache is not None:
                config.timing_cache.entries.append(network.onnx_path)
            plan = {'tensorrt': version, 'onnx': network.onnx_path, 'profile': profile,
                    'strongly_typed': strongly_typed, 'fp16': fp16, 'tf32': trt.BuilderFlag.TF32 in config.flags}
            return PLAN_MAGIC + json.dumps(plan).encode()

    class IExecutionContext:
        def __init__(self, engine: 'ICudaEngine') -> None:
            self.engine = engine
            self.shapes: Dict[str, Tuple[int, ...]] = {}
            self.addresses: Dict[str, int] = {}
            self.refuse_addresses = False  # tests set it to see a refused address handled

        @recorded
        def set_input_shape(self, name: str, shape) -> bool:
            low_high = self.engine.plan['profile'].get(name)
            fixed = self.engine.get_tensor_shape(name)
            shape = tuple(shape)
            if low_high is not None:
                fits = len(shape) == len(low_high[0]) and all(
                    low <= v <= high for low, v, high in zip(low_high[0], shape, low_high[2]))
            else:
                fits = shape == tuple(fixed)
            if fits:
                self.shapes[name] = shape
            return fits

        @recorded
        def get_tensor_shape(self, name: str) -> Dims:
            if name in self.engine.input_names:
                return Dims(self.shapes.get(name, self.engine.get_tensor_shape(name)))
            feeds = {n: np.zeros(self.shapes[n], np.float32) for n in self.engine.input_names}
            index = self.engine.output_names.index(name)
            return Dims(self.engine.session().run(None, feeds)[index].shape)

        @recorded
        def set_tensor_address(self, name: str, memory: int) -> bool:
            if self.refuse_addresses or name not in self.engine.names or not memory:
                return False
            self.addresses[name] = memory
            return True

        @recorded
        def execute_async_v3(self, stream_handle: int) -> bool:
            if stream_handle == DEFAULT_STREAM:
                trt.warnings.append('Using default stream in enqueueV3() may lead to performance issues due to '
                                    'additional calls to cudaStreamSynchronize() by TensorRT')
            if set(self.addresses) != set(self.engine.names):
                return False
            feeds = {n: _read(self.addresses[n], self.shapes[n]).copy() for n in self.engine.input_names}
            for name, value in zip(self.engine.output_names, self.engine.session().run(None, feeds)):
                _read(self.addresses[name], value.shape)[...] = value
            return True

    class ICudaEngine:
        def __init__(self, plan: dict) -> None:
            self.plan = plan
            graph = onnx.load(plan['onnx'], load_external_data=False).graph
            initializers = {init.name for init in graph.initializer}
            self.tensors = {v.name: _onnx_shape(v) for v in list(graph.input) + list(graph.output)
                            if v.name not in initializers}
            self.input_names = [v.name for v in graph.input if v.name not in initializers]
            self.output_names = [v.name for v in graph.output]
            self.names = self.input_names + self.output_names
            self._session = None

        def session(self):
            if self._session is None:
                import onnxruntime
                self._session = onnxruntime.InferenceSession(self.plan['onnx'], providers=['CPUExecutionProvider'])
            return self._session

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        @recorded
        def get_tensor_name(self, index: int) -> str:
            return self.names[index]

        @recorded
        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode.INPUT if name in self.input_names else trt.TensorIOMode.OUTPUT

        @recorded
        def get_tensor_dtype(self, name: str):
            return trt.DataType.FLOAT

        @recorded
        def get_tensor_shape(self, name: str) -> Dims:
            return Dims(self.tensors[name])

        @recorded
        def create_execution_context(self, strategy=None) -> IExecutionContext:
            return IExecutionContext(self)

    class Runtime:
        @recorded
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        @recorded
        def deserialize_cuda_engine(self, serialized_engine) -> Optional[ICudaEngine]:
            blob = bytes(serialized_engine)
            if not blob.startswith(PLAN_MAGIC):
                return None
            plan = json.loads(blob[len(PLAN_MAGIC):])
            if plan['tensorrt'] != version:
                return None  # TensorRT refuses plans of other versions
            return ICudaEngine(plan)

    for cls in (Logger, Dims, ITensor, INetworkDefinition, IParserError, OnnxParser, IOptimizationProfile,
                ITimingCache, IBuilderConfig, Builder, IExecutionContext, ICudaEngine, Runtime):
        setattr(trt, cls.__name__, cls)
    return trt


def _onnx_shape(value) -> Tuple[int, ...]:
    return tuple(d.dim_value if d.HasField('dim_value') else -1 for d in value.type.tensor_type.shape.dim)


def _read(address: int, shape: Tuple[int, ...]) -> np.ndarray:
    """The float32 array of ``shape`` at a raw (host) address."""
    count = int(np.prod(shape))
    return np.ctypeslib.as_array((ctypes.c_float * count).from_address(address)).reshape(shape)


class RecordingStream:
    """Stands in for :class:`sfc_plugin.deploy.tensorrt_engine.EngineStream` on a CPU: records the order of
    its calls in ``events`` (shared with the stand-in module's ``calls``)."""
    HANDLE = 0x5EED

    def __init__(self, device, calls: list) -> None:
        self.device, self.calls = device, calls

    @property
    def handle(self) -> int:
        return self.HANDLE

    def scope(self):
        import contextlib
        return contextlib.nullcontext()

    def begin(self, inputs) -> None:
        self.calls.append(('EngineStream.begin', {'inputs': [t.data_ptr() for t in inputs]}))

    def end(self) -> None:
        self.calls.append(('EngineStream.end', {}))
