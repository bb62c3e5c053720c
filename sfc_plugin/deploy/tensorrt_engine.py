"""``sfc-export tensorrt``: TensorRT engines from an export folder, and :class:`TensorRTEngine` to run them.

Written against NVIDIA's TensorRT Python API as documented for 10.x and 11.x
(https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/): ``trt.Builder``,
``trt.OnnxParser``, ``IBuilderConfig`` (``set_memory_pool_limit``, optimization profiles, timing cache),
``build_serialized_network``; ``trt.Runtime.deserialize_cuda_engine`` and the v3 execution API
(``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) with torch CUDA tensors as buffers.

Precision: TensorRT 11 builds strongly typed networks only (``BuilderFlag.FP16`` is gone), so FP16 comes
from an FP16 ONNX export (``sfc-export onnx --fp16``), built strongly typed (TensorRT 10 too). On
TensorRT 10 an FP32 ONNX backbone can still be built with the FP16 builder flag (``--fp16``). The
propagation engine is built exactly as its ONNX model is typed, never with the FP16 flag or TF32: its top-k
selection is the FP32 one of the dense reference (an FP16 step comes only from ``--fp16-propagate``).

One ``trt.Logger`` serves the whole process, and engines run on a stream of their own that is ordered after
the caller's current stream (inputs) and before its later work (outputs) without host synchronisation.

Each ``<name>.engine`` gets a sidecar ``<name>.engine.json`` (TensorRT version, GPU, compute capability,
shapes, precision, hashes). Engines only run with the TensorRT version and GPU model they were built for;
:class:`TensorRTEngine` checks the sidecar first and says how to rebuild.
"""
import contextlib
import datetime
import functools
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log

from sfc_plugin.utils import atomic_path, file_sha256, read_json, write_json
from .meta import MODEL_FILES, ExportMeta, load_export_meta

ENGINE_FILES = {'backbone': 'backbone.engine', 'propagate': 'propagate.engine'}
SIDECAR_FORMAT_VERSION = 1
Shape = Tuple[int, ...]


class TensorRTUnavailableError(RuntimeError):
    """TensorRT (or a CUDA device) is not available on this machine."""


class EngineMismatchError(RuntimeError):
    """An engine was built for another TensorRT version or GPU, or its sidecar is missing or stale."""


def import_tensorrt():
    """The ``tensorrt`` module; TensorRTUnavailableError with install advice if it cannot be imported."""
    try:
        import tensorrt
    except (ImportError, OSError) as error:  # OSError: the Python bindings without the TensorRT libraries
        raise TensorRTUnavailableError(
            f'TensorRT is not installed here (import tensorrt failed: {error}). Building and running engines '
            'needs TensorRT 10 or 11 and an NVIDIA GPU: install the tensorrt wheel matching your CUDA version '
            "(pip install 'sfc_plugin[tensorrt]', from NVIDIA's package index), or run the ONNX models with "
            'onnxruntime instead.') from error
    return tensorrt


def tensorrt_version() -> Optional[str]:
    """The version of the importable ``tensorrt`` module, or None if it cannot be imported here."""
    try:
        return import_tensorrt().__version__
    except TensorRTUnavailableError:
        return None


def cuda_device(device: Optional[str] = None) -> torch.device:
    """``device`` ('cuda', 'cuda:1'; default: the current CUDA device) as a torch.device with its index;
    ValueError naming it if it is not a CUDA device torch sees here."""
    parsed = torch.device(device) if device is not None else torch.device('cuda')
    if parsed.type != 'cuda':
        raise ValueError(f'device {device}: expected a CUDA device (cuda or cuda:N)')
    index = parsed.index if parsed.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f'device {device}: torch sees {torch.cuda.device_count()} CUDA device(s) here')
    return torch.device('cuda', index)


@functools.lru_cache(maxsize=None)
def shared_logger(trt):
    """The one ``trt.Logger`` of this process for ``trt`` (TensorRT warns when a second one is made)."""
    return trt.Logger(trt.Logger.WARNING)


def _require_cuda(device: Optional[str] = None) -> torch.device:
    """:func:`cuda_device`, or TensorRTUnavailableError if torch sees no CUDA device here."""
    if not torch.cuda.is_available():
        raise TensorRTUnavailableError('TensorRT engines need a CUDA device, and torch sees none here '
                                       f'(torch {torch.__version__}, CUDA build: {torch.version.cuda})')
    return cuda_device(device)


class EngineStream:
    """A CUDA stream of an engine's own on ``device``: work queued on it waits for what the caller's current
    stream queued before (:meth:`begin`), and the current stream's later work waits for it (:meth:`end`), with
    no host synchronisation (TensorRT synchronises the device around every call on the default stream)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)

    @property
    def handle(self) -> int:
        """The ``cudaStream_t`` for ``execute_async_v3``."""
        return self.stream.cuda_stream

    def scope(self) -> contextlib.AbstractContextManager:
        """Make :attr:`device` current (engines are created and run with their device current)."""
        return torch.cuda.device(self.device)

    def begin(self, inputs: Sequence[torch.Tensor]) -> None:
        """Order the engine after the work that wrote ``inputs``; keep their memory until the engine is done."""
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        for tensor in inputs:
            tensor.record_stream(self.stream)

    def end(self) -> None:
        """Order the caller's later work (reading the outputs) after the engine."""
        torch.cuda.current_stream(self.device).wait_stream(self.stream)


def gpu_identity(device: Optional[torch.device] = None) -> Tuple[str, List[int]]:
    """(GPU name, [major, minor] compute capability) of ``device`` (default: the current one)."""
    device = device if device is not None else _require_cuda()
    return torch.cuda.get_device_name(device), list(torch.cuda.get_device_capability(device))


def parse_image_size(text: str) -> Tuple[int, int]:
    """``'480x854'`` -> (480, 854)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'image size must look like HEIGHTxWIDTH (e.g. 480x854), got {text!r}') from None
    if height < 1 or width < 1:
        raise ValueError(f'image size must be positive, got {text!r}')
    return height, width


def backbone_profile(meta: ExportMeta, min_size: Optional[Sequence[int]] = None,
                     opt_size: Optional[Sequence[int]] = None,
                     max_size: Optional[Sequence[int]] = None) -> Optional[Dict[str, Tuple[Shape, Shape, Shape]]]:
    """The optimization profile of ``backbone.onnx``: ``{'image': (min, opt, max)}`` or None if fixed-size.

    Sizes are (H, W); those not given default to the export's size (the one ``propagate.onnx`` fits).
    """
    given = [size for size in (min_size, opt_size, max_size) if size is not None]
    if not meta.dynamic:
        if given:
            raise ValueError(f'backbone.onnx was exported for a fixed {meta.image_size[0]}x{meta.image_size[1]} '
                             'image; --min/--opt/--max apply to exports made with --dynamic')
        return None
    export_size = tuple(meta.export_image_size)
    sizes = [tuple(size) if size is not None else export_size for size in (min_size, opt_size, max_size)]
    if not all(low <= high for pair in zip(sizes, sizes[1:]) for low, high in zip(*pair)):
        raise ValueError(f'the profile needs min <= opt <= max in height and width, got min {sizes[0]}, '
                         f'opt {sizes[1]}, max {sizes[2]}')
    return {'image': tuple((1, 3) + size for size in sizes)}


def build_plan(precision: str, fp16_flag: bool, has_fp16_flag: bool, allow_tf32: bool) -> Dict[str, bool]:
    """How to build a network: ``strongly_typed``, ``fp16_flag`` and ``tf32`` for this TensorRT.

    Args:
        precision: of the ONNX model, 'fp32' or 'fp16'.
        fp16_flag: the user asked for FP16 (``--fp16``).
        has_fp16_flag: ``hasattr(trt.BuilderFlag, 'FP16')`` (TensorRT 10; TensorRT 11 removed it).
        allow_tf32: keep TensorRT's default TF32 for FP32 convolutions and matrix products.
    """
    if precision == 'fp16':
        # The ONNX types decide (strongly typed); nothing else to ask for.
        return {'strongly_typed': True, 'fp16_flag': False, 'tf32': allow_tf32}
    if fp16_flag and not has_fp16_flag:
        raise ValueError('this TensorRT builds strongly typed networks only (no FP16 builder flag, as in TensorRT '
                         '11): FP16 has to come from the ONNX model; export one with `sfc-export onnx ... --fp16` '
                         'and build that')
    return {'strongly_typed': not has_fp16_flag, 'fp16_flag': fp16_flag, 'tf32': allow_tf32}


def build_engine(onnx_path: str, engine_path: str, precision: str,
                 profile: Optional[Dict[str, Tuple[Shape, Shape, Shape]]] = None, fp16_flag: bool = False,
                 workspace_mb: Optional[int] = None, timing_cache: Optional[str] = None,
                 allow_tf32: bool = False, onnx_sha256: Optional[str] = None) -> dict:
    """Build a TensorRT engine from ``onnx_path`` and write it with its sidecar (both atomically).

    Args:
        precision: of the ONNX model ('fp32' or 'fp16', from meta.json).
        profile: ``{input: (min, opt, max)}`` for the dynamic inputs (None: all shapes fixed).
        fp16_flag: TensorRT 10's FP16 builder flag for an FP32 model (an error on TensorRT 11).
        workspace_mb: limit of the builder's workspace memory pool.
        timing_cache: file of layer timings, read if it exists and updated after the build.
        allow_tf32: keep TF32 for FP32 layers (faster, ~1e-3 relative error).
    Returns:
        The sidecar written as ``engine_path + '.json'``.
    """
    trt = import_tensorrt()
    device = _require_cuda()
    plan = build_plan(precision, fp16_flag, hasattr(trt.BuilderFlag, 'FP16'), allow_tf32)
    logger = shared_logger(trt)
    builder = trt.Builder(logger)
    network = _parse_onnx(trt, builder, logger, onnx_path, plan)
    config = _builder_config(trt, builder, plan, onnx_path, profile, workspace_mb)
    cache = _attach_timing_cache(config, timing_cache) if timing_cache is not None else None

    print_log(f'Building {engine_path} with TensorRT {trt.__version__} (can take minutes)', logger='current')
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f'TensorRT could not build an engine from {onnx_path} (see its log above)')
    _write_bytes(engine_path, memoryview(serialized))
    if cache is not None:  # the cache the builder used and updated (get_timing_cache() can be None)
        _write_bytes(timing_cache, memoryview(cache.serialize()))

    gpu_name, capability = gpu_identity(device)
    sidecar = {
        'format_version': SIDECAR_FORMAT_VERSION,
        'tensorrt_version': trt.__version__, 'gpu_name': gpu_name, 'compute_capability': capability,
        'cuda_version': torch.version.cuda, 'precision': 'fp16' if precision == 'fp16' or plan['fp16_flag'] else 'fp32',
        'onnx_precision': precision, **plan, 'inputs': _input_shapes(network, profile),
        'outputs': {network.get_output(i).name: list(network.get_output(i).shape) for i in range(network.num_outputs)},
        'workspace_mb': workspace_mb, 'timing_cache': os.path.abspath(timing_cache) if timing_cache else None,
        'onnx_file': os.path.abspath(onnx_path), 'onnx_sha256': onnx_sha256 or file_sha256(onnx_path),
        'engine_sha256': file_sha256(engine_path),
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }
    write_json(engine_path + '.json', sidecar, indent=2)
    return sidecar


def _parse_onnx(trt, builder, logger, onnx_path: str, plan: dict):
    """The TensorRT network of an ONNX file (strongly typed where the plan says so)."""
    flags = 0
    if plan['strongly_typed'] and hasattr(trt.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED'):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)  # TensorRT 11: always on
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f'{onnx_path}: the TensorRT ONNX parser rejects the model:\n  ' + '\n  '.join(errors))
    return network


def _builder_config(trt, builder, plan: dict, onnx_path: str, profile: Optional[Dict[str, Tuple[Shape, Shape, Shape]]],
                    workspace_mb: Optional[int]):
    """The builder config: workspace limit, precision flags and the optimization profile of dynamic inputs."""
    config = builder.create_builder_config()
    if workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if plan['fp16_flag']:
        config.set_flag(trt.BuilderFlag.FP16)
    if not plan['tf32'] and hasattr(trt.BuilderFlag, 'TF32'):
        config.clear_flag(trt.BuilderFlag.TF32)
    if profile:
        optimization_profile = builder.create_optimization_profile()
        for name, (low, opt, high) in profile.items():
            optimization_profile.set_shape(name, low, opt, high)
        if config.add_optimization_profile(optimization_profile) < 0:
            raise ValueError(f'{onnx_path}: TensorRT rejects the optimization profile {profile} (see its log)')
    return config


def _input_shapes(network, profile: Optional[Dict[str, Tuple[Shape, Shape, Shape]]]) -> Dict[str, dict]:
    """Each network input's fixed shape, or its profile's min / opt / max."""
    inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if profile and tensor.name in profile:
            low, opt, high = profile[tensor.name]
            inputs[tensor.name] = {'min': list(low), 'opt': list(opt), 'max': list(high)}
        else:
            inputs[tensor.name] = {'shape': list(tensor.shape)}
    return inputs


def _write_bytes(path: str, data: memoryview) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)


def _attach_timing_cache(config, path: str):
    """Give ``config`` the timing cache of ``path`` (a new one if the file is absent or was made by another
    TensorRT version or GPU, which TensorRT refuses); return the cache object the build will update."""
    blob = b''
    if os.path.isfile(path):
        with open(path, 'rb') as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return cache
    if not blob:
        raise RuntimeError(f'{path}: TensorRT did not accept a new, empty timing cache')
    print_log(f'{path}: TensorRT refuses this timing cache (made by another TensorRT version or GPU, or damaged); '
              'building with a new one, which replaces it', logger='current', level=logging.WARNING)
    cache = config.create_timing_cache(b'')
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise RuntimeError(f'{path}: TensorRT did not accept a new, empty timing cache')
    return cache


def build_export_engines(export_dir: str, fp16_flag: bool = False, min_size: Optional[Sequence[int]] = None,
                         opt_size: Optional[Sequence[int]] = None, max_size: Optional[Sequence[int]] = None,
                         workspace_mb: Optional[int] = None, timing_cache: Optional[str] = None,
                         allow_tf32: bool = False, models: Sequence[str] = tuple(MODEL_FILES)) -> Dict[str, dict]:
    """``backbone.engine`` and ``propagate.engine`` (with sidecars) beside the ONNX models of an export.

    ``fp16_flag`` and ``allow_tf32`` apply to the backbone only: the propagation engine keeps the precision of
    ``propagate.onnx`` (FP32 unless exported with ``--fp16-propagate``), so that its top-k is the exact one.
    """
    import_tensorrt()  # say plainly that TensorRT is missing before reading anything
    _require_cuda()
    if (fp16_flag or allow_tf32) and 'backbone' not in models:
        raise ValueError('--fp16 and --tf32 apply to the backbone engine only; the propagation engine keeps the '
                         'precision of propagate.onnx (export with --fp16 --fp16-propagate for an FP16 step)')
    meta = load_export_meta(export_dir)
    profiles = {'backbone': backbone_profile(meta, min_size, opt_size, max_size), 'propagate': None}
    sidecars = {}
    for name in models:
        reduced = name == 'backbone'
        sidecars[name] = build_engine(
            meta.model_path(export_dir, name), os.path.join(export_dir, ENGINE_FILES[name]), meta.precisions[name],
            profiles[name], fp16_flag and reduced, workspace_mb, timing_cache, allow_tf32 and reduced,
            meta.sha256[name])
    return sidecars


def read_engine_sidecar(engine_path: str) -> dict:
    """The sidecar of ``engine_path``; EngineMismatchError naming the file if it is missing or unreadable."""
    path = engine_path + '.json'
    sidecar = read_json(path, EngineMismatchError, 'missing; the engine cannot be checked against this machine. '
                                                   'Rebuild it with `sfc-export tensorrt EXPORT_DIR`')
    if sidecar.get('format_version') != SIDECAR_FORMAT_VERSION:
        raise EngineMismatchError(f'{path}: format_version {sidecar.get("format_version")!r}, expected '
                                  f'{SIDECAR_FORMAT_VERSION}; rebuild the engine with `sfc-export tensorrt EXPORT_DIR`')
    return sidecar


def check_engine_sidecar(sidecar: dict, engine_path: str, tensorrt_version: str, gpu_name: str,
                         compute_capability: Sequence[int]) -> None:
    """EngineMismatchError unless the engine was built with this TensorRT version for this GPU model."""
    problems = []
    if sidecar.get('tensorrt_version') != tensorrt_version:
        problems.append(f'TensorRT {sidecar.get("tensorrt_version")} (this machine: {tensorrt_version})')
    if list(sidecar.get('compute_capability', [])) != list(compute_capability) or sidecar.get('gpu_name') != gpu_name:
        problems.append(f'GPU {sidecar.get("gpu_name")} with compute capability '
                        f'{".".join(map(str, sidecar.get("compute_capability", [])))} (this machine: {gpu_name}, '
                        f'{".".join(map(str, compute_capability))})')
    if problems:
        export_dir = os.path.dirname(os.path.abspath(engine_path))
        raise EngineMismatchError(f'{engine_path} was built for ' + ' and '.join(problems) + '. TensorRT engines '
                                  'only run with the TensorRT version and GPU model they were built for: rebuild '
                                  f'it on this machine with `sfc-export tensorrt {export_dir}`')


class TensorRTEngine:
    """A TensorRT engine built by ``sfc-export tensorrt``, run on torch CUDA tensors.

    Args:
        path: ``backbone.engine`` or ``propagate.engine``; its sidecar must match this machine.
        onnx_sha256: if given, the engine must have been built from the ONNX model with this hash
            (e.g. ``load_export_meta(dir).sha256['backbone']``), so a re-export makes it stale.
        device: CUDA device to run on ('cuda:1'...; default: the current one).

    ``run({'image': tensor})`` returns ``{'features': tensor}`` (likewise ``query``, ``context_feats``,
    ``context_labels`` -> ``labels``): new CUDA tensors, computed on the engine's own stream and safe to use on
    the caller's current stream (no host synchronisation).
    """

    def __init__(self, path: str, onnx_sha256: Optional[str] = None, device: Optional[str] = None) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: no such engine file')
        self.path = path
        self.sidecar = read_engine_sidecar(path)
        trt = import_tensorrt()
        self.device = _require_cuda(device)
        check_engine_sidecar(self.sidecar, path, trt.__version__, *gpu_identity(self.device))
        rebuild = f'rebuild it with `sfc-export tensorrt {os.path.dirname(os.path.abspath(path))}`'
        if onnx_sha256 is not None and self.sidecar.get('onnx_sha256') != onnx_sha256:
            raise EngineMismatchError(f'{path} was built from another export of the ONNX model; {rebuild}')
        with open(path, 'rb') as f:
            blob = f.read()
        self.stream = EngineStream(self.device)
        with self.stream.scope():
            self._runtime = trt.Runtime(shared_logger(trt))
            self.engine = self._runtime.deserialize_cuda_engine(blob)
            if self.engine is None:
                raise EngineMismatchError(f'{path}: TensorRT {trt.__version__} cannot deserialize this engine; '
                                          f'{rebuild}')
            self.context = self.engine.create_execution_context()
        dtypes = _torch_dtypes(trt)
        self.input_names, self.output_names, self.dtypes = [], [], {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.input_names if is_input else self.output_names).append(name)
            self.dtypes[name] = dtypes[self.engine.get_tensor_dtype(name)]

    def _bind(self, name: str, tensor: torch.Tensor) -> None:
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise RuntimeError(f'{self.path}: TensorRT refused the address of {name} ({tuple(tensor.shape)}, '
                               f'{tensor.dtype} on {tensor.device}; see its log)')

    def run(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Execute the engine on ``inputs`` (any device and float dtype; copied to the engine's)."""
        if sorted(inputs) != sorted(self.input_names):
            raise ValueError(f'{self.path}: expected inputs {sorted(self.input_names)}, got {sorted(inputs)}')
        with self.stream.scope():
            feeds = []
            for name in self.input_names:
                tensor = inputs[name].to(self.device, self.dtypes[name]).contiguous()
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise ValueError(f'{self.path}: input {name} of shape {tuple(tensor.shape)} does not fit the '
                                     f'engine ({self.sidecar["inputs"].get(name)})')
                self._bind(name, tensor)
                feeds.append(tensor)
            outputs = {}
            for name in self.output_names:
                outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name],
                                            device=self.device)
                self._bind(name, outputs[name])
            self.stream.begin(feeds)
            if not self.context.execute_async_v3(self.stream.handle):
                raise RuntimeError(f'{self.path}: TensorRT execution failed (see its log)')
            self.stream.end()
        return outputs


def _torch_dtypes(trt) -> dict:
    """TensorRT data types -> torch dtypes (those this TensorRT version has)."""
    names = {'FLOAT': torch.float32, 'HALF': torch.float16, 'BF16': torch.bfloat16, 'INT32': torch.int32,
             'INT64': torch.int64, 'INT8': torch.int8, 'UINT8': torch.uint8, 'BOOL': torch.bool}
    return {getattr(trt.DataType, name): dtype for name, dtype in names.items() if hasattr(trt.DataType, name)}
