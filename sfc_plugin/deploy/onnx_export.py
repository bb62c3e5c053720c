"""``sfc-export onnx``: the fused backbone and one propagation step as ONNX models, with ``meta.json``.

``backbone.onnx`` is :class:`SFCBackbone` (RGB in [0, 1], per-branch normalisation and the L2
normalisations inside); ``propagate.onnx`` is :class:`sfc_plugin.propagation.PropagationStep`, the exact
step of the one propagation core, traced for a fixed feature size, context length and number of label
channels. Both use the TorchScript exporter at opset 17 (TensorRT 10/11 and onnxruntime). Before anything
is moved into place, onnxruntime runs both models against PyTorch; the folder then receives the models
and, last, ``meta.json`` (see :mod:`.meta`), so an interrupted export never looks like a finished one.
"""
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import onnxruntime
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from onnx import helper, numpy_helper

from sfc_plugin.apis.inference import build_model
from sfc_plugin.propagation import PropagationStep, network_input_size, topk_boundary_gaps
from sfc_plugin.utils import file_sha256
from sfc_plugin.utils.io import ensure_writable_dir
from sfc_plugin.version import __version__
from .fp16 import convert_to_fp16
from .onnxruntime_session import onnxruntime_session
from .meta import META_FILE, MODEL_FILES, ExportMeta, check_model_io, write_export_meta
from .trt_compat import check_tensorrt_compatibility

DEFAULT_IMAGE_SIZE = (480, 854)  # DAVIS 480p
DEFAULT_NUM_LABELS = 8
DEFAULT_OPSET = 17
# Parity of onnxruntime against PyTorch, per model precision, checked at export and in the tests.
# FP16 backbone: convolutions in FP16, normalisations in FP32; measured max abs error 2e-4 on the
# L2-normalised features. FP16 propagation (opt-in): the affinity products in FP16, top-k, softmax and the
# label blend in FP32. FP16 rounds affinities near 1 to ~5e-4, so keys closer than that swap places in the
# top-k: the tiny model agrees on 98.5-99.5 % of the cells (mean abs error 2-7e-3), the random-weight full
# SFC model at 480x854, whose affinities crowd near 1, on only 88 %; hence FP32 propagation by default.
TOLERANCES = {
    'backbone': {'fp32': dict(max_abs=1e-4), 'fp16': dict(max_abs=5e-3)},
    'propagate': {'fp32': dict(max_abs=1e-4, argmax_agreement=0.999),  # max_abs: at untied cells
                  'fp16': dict(max_abs=0.3, mean_abs=1e-2, argmax_agreement=0.97)},
}
# Affinities closer than this at the top-k boundary are a tie (fp32 products of unit vectors differ by
# ~1e-6 between implementations that sum in different orders).
TIE_GAP = 1e-5
# Uniform constants with at least this many elements are stored as ConstantOfShape.
UNIFORM_CONSTANT_MIN_SIZE = 1024


class ExportError(RuntimeError):
    """The export could not be written or its models do not match PyTorch."""


def check_image_size(image_size: Sequence[int], stride: int, topk: int) -> Tuple[int, int]:
    """The feature size of ``image_size`` (H, W); ValueError for sizes no export can use.

    Sizes must be positive integers whose stride-``stride`` feature map, ``ceil(H / stride) x
    ceil(W / stride)``, holds at least ``topk`` cells (the keys one context frame offers a query).
    """
    if len(image_size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in image_size):
        raise ValueError(f'image size must be two positive integers (height, width), got {tuple(image_size)}')
    height, width = (int(v) for v in image_size)
    feat_size = (math.ceil(height / stride), math.ceil(width / stride))
    if feat_size[0] * feat_size[1] < topk:
        raise ValueError(f'image size {height}x{width} gives a {feat_size[0]}x{feat_size[1]} feature map '
                         f'(stride {stride}): fewer than topk={topk} cells per frame; use a larger image')
    return feat_size


def compact_uniform_constants(model: onnx.ModelProto, min_size: int = UNIFORM_CONSTANT_MIN_SIZE) -> int:
    """Replace large constants that hold one repeated value by ``ConstantOfShape``; return how many.

    The traced propagation step fills the blocks of key tiles above and below the map with -inf
    constants (over 100 MB at DAVIS size); as ``ConstantOfShape`` they cost a few bytes.
    """
    def uniform(array: np.ndarray) -> bool:
        if array.size < min_size or array.dtype.kind not in 'biuf':
            return False
        return bool(np.all(array == array.flat[0]) or (array.dtype.kind == 'f' and np.all(np.isnan(array))))

    def constant_of_shape(name: str, array: np.ndarray) -> List[onnx.NodeProto]:
        shape_name = f'{name}__shape'
        return [helper.make_node('Constant', [], [shape_name], name=f'{shape_name}_node',
                                 value=numpy_helper.from_array(np.array(array.shape, np.int64), shape_name)),
                helper.make_node('ConstantOfShape', [shape_name], [name], name=f'{name}_node',
                                 value=numpy_helper.from_array(array.reshape(-1)[:1].copy(), f'{name}__value'))]

    nodes, replaced = [], 0
    for init in list(model.graph.initializer):
        array = numpy_helper.to_array(init)
        if uniform(array):
            nodes += constant_of_shape(init.name, array)
            model.graph.initializer.remove(init)
            replaced += 1
    for node in model.graph.node:
        if node.op_type == 'Constant' and node.attribute[0].name == 'value':
            array = numpy_helper.to_array(node.attribute[0].t)
            if uniform(array):
                nodes += constant_of_shape(node.output[0], array)
                replaced += 1
                continue
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


def _set_shape(value: onnx.ValueInfoProto, dims: Sequence) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        if isinstance(dim, str):
            shape.dim.add().dim_param = dim
        else:
            shape.dim.add().dim_value = int(dim)


def _trace_to_onnx(module: torch.nn.Module, args: tuple, path: str, input_names: List[str], output_names: List[str],
                   opset: int, dynamic_axes: Optional[dict] = None) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter warns that it is legacy; tracing warns about Python-level shape checks.
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        warnings.simplefilter('ignore', category=DeprecationWarning)
        warnings.simplefilter('ignore', category=UserWarning)
        torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                          opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True, dynamo=False)


def _finish_model(path: str, io_shapes: Dict[str, Dict[str, list]], fp16: bool) -> onnx.ModelProto:
    """Fix the I/O shapes, compact uniform constants, optionally convert to FP16, check and save."""
    model = onnx.load(path)
    for value in model.graph.input:
        _set_shape(value, io_shapes['inputs'][value.name])
    for value in model.graph.output:
        _set_shape(value, io_shapes['outputs'][value.name])
    compact_uniform_constants(model)
    if fp16:
        model = convert_to_fp16(model)
    onnx.checker.check_model(model, full_check=True)
    check_model_io(model, io_shapes, path)
    onnx.save(model, path)
    return model


def _branch_normalization(backbone: torch.nn.Module) -> Dict[str, Dict[str, List[float]]]:
    normalization = {}
    for branch in ('fine_grained', 'semantic'):
        if getattr(backbone, branch, None) is not None:
            normalization[branch] = {
                'mean': [round(float(v), 8) for v in getattr(backbone, f'{branch}_mean').flatten()],
                'std': [round(float(v), 8) for v in getattr(backbone, f'{branch}_std').flatten()],
                'scale': '[0, 1] RGB; applied inside backbone.onnx'}
    return normalization


def _verification_inputs(features: torch.Tensor, context_len: int, num_labels: int,
                         seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A query and a context that look like a video: real backbone features (C, h, w) shifted a little
    per frame plus noise, and soft labels of ``num_labels`` regions (nearest of random centres, with
    smoothed boundaries) that move with them."""
    generator = torch.Generator().manual_seed(seed)
    channels, height, width = features.shape
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    centres = torch.rand(num_labels, 2, generator=generator) * torch.tensor([height, width])
    distance = (rows[None] - centres[:, 0, None, None]) ** 2 + (cols[None] - centres[:, 1, None, None]) ** 2
    regions = F.one_hot(distance.argmin(0), num_labels).permute(2, 0, 1).float()  # (K, h, w)
    labels = F.avg_pool2d(regions[None], 3, stride=1, padding=1, count_include_pad=False)[0]

    def frame(index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        shift = (index % 3 - 1, index % 5 - 2)  # at most 2 cells
        noise = torch.randn(features.shape, generator=generator) * 0.5 / math.sqrt(channels)
        moved = F.normalize(torch.roll(features, shifts=shift, dims=(1, 2)) + noise, dim=0)
        return moved, torch.roll(labels, shifts=shift, dims=(1, 2))

    frames = [(features, labels)] + [frame(index) for index in range(1, context_len + 2)]
    query = frames.pop()[0]
    return query, torch.stack([f for f, _ in frames]), torch.stack([lab for _, lab in frames])


def _verify(backbone: torch.nn.Module, step: PropagationStep, paths: Dict[str, str], sizes: List[Tuple[int, int]],
            num_labels: int, precisions: Dict[str, str]) -> dict:
    """Run both models with onnxruntime and compare them with PyTorch; ExportError beyond tolerance.

    FP32 soft labels must agree to ``max_abs`` at every cell whose top-k is not tied (k-th and (k+1)-th
    affinities more than TIE_GAP apart); at tied cells either choice is right (see topk_boundary_gaps).
    """
    session = onnxruntime_session(paths['backbone'])
    generator = torch.Generator().manual_seed(0)
    backbone_errors, features = [], None
    for size in sizes:
        image = torch.rand(1, 3, *size, generator=generator)
        with torch.no_grad():
            expected = backbone(image)
        actual = session.run(None, {'image': image.numpy()})[0]
        backbone_errors.append(float(np.abs(actual - expected.numpy()).max())
                               if actual.shape == tuple(expected.shape) else math.inf)
        if features is None:
            features = expected[0]
    session = onnxruntime_session(paths['propagate'])
    query, context_feats, context_labels = _verification_inputs(features, step.context_len, num_labels)
    expected = step(query, context_feats, context_labels)
    actual = torch.from_numpy(session.run(None, {'query': query.numpy(), 'context_feats': context_feats.numpy(),
                                                 'context_labels': context_labels.numpy()})[0])
    errors = (actual - expected).abs().amax(0).flatten()  # per cell
    propagate = {'max_abs': float(errors.max()), 'mean_abs': float((actual - expected).abs().mean()),
                 'argmax_agreement': float((actual.argmax(0) == expected.argmax(0)).float().mean())}
    if precisions['propagate'] == 'fp32':
        differing = torch.nonzero(errors > TOLERANCES['propagate']['fp32']['max_abs']).flatten()
        tied = differing[topk_boundary_gaps(query, context_feats, differing, step.settings) <= TIE_GAP]
        untied_errors = errors.clone()
        untied_errors[tied] = 0
        propagate.update(max_abs=float(untied_errors.max()), max_abs_with_ties=float(errors.max()),
                         tied_cells=len(tied))
    measured = {'backbone': {'max_abs': max(backbone_errors)}, 'propagate': propagate}
    failures = []
    for model, values in measured.items():
        tolerance = TOLERANCES[model][precisions[model]]
        for metric, limit in tolerance.items():
            value = values[metric]
            if (value < limit) if metric == 'argmax_agreement' else (value > limit):
                failures.append(f'{model} {metric} {value:.4g} (tolerance {limit})')
    if failures:
        raise ExportError('onnxruntime does not match PyTorch: ' + '; '.join(failures))
    return {'provider': 'CPUExecutionProvider', 'image_sizes': [list(size) for size in sizes],
            'measured': measured,
            'tolerances': {model: TOLERANCES[model][precisions[model]] for model in measured}}


@dataclass(frozen=True)
class ExportOptions:
    """What ``sfc-export onnx`` writes.

    Args:
        image_size: (H, W) the backbone is exported for; with ``dynamic`` the size it is traced and
            verified at, and the one whose feature map ``propagate.onnx`` takes. Default: the config's
            ``test_dataloader.dataset.input_size`` if set, else 480 x 854 (DAVIS 480p).
        dynamic: dynamic image height and width in ``backbone.onnx``.
        num_labels: K, label channels (background included) of ``propagate.onnx``; videos with fewer
            labels pad the extra channels with zeros, which stay zero.
        fp16: FP16 backbone (normalisations in FP32; inputs and outputs stay FP32).
        fp16_propagate: with ``fp16``, FP16 affinity products in ``propagate.onnx`` too; approximate
            top-k (see TOLERANCES), so off by default.
        opset: ONNX opset (TensorRT 10/11 parse 9..20).
        verify: compare onnxruntime with PyTorch before writing (ExportError beyond tolerance).
    """
    image_size: Optional[Sequence[int]] = None
    dynamic: bool = False
    num_labels: int = DEFAULT_NUM_LABELS
    fp16: bool = False
    fp16_propagate: bool = False
    opset: int = DEFAULT_OPSET
    verify: bool = True

    def __post_init__(self) -> None:
        if self.num_labels < 1:
            raise ValueError(f'num_labels must be >= 1, got {self.num_labels}')
        if self.fp16_propagate and not self.fp16:
            raise ValueError('an FP16 propagation step (fp16_propagate) is part of an FP16 export (fp16)')

    @property
    def precisions(self) -> Dict[str, str]:
        return {'backbone': 'fp16' if self.fp16 else 'fp32', 'propagate': 'fp16' if self.fp16_propagate else 'fp32'}


def export_onnx(config: str, checkpoint: Optional[str], out_dir: str, options: ExportOptions = ExportOptions(),
                cfg_options: Optional[dict] = None, allow_pickle: bool = False) -> ExportMeta:
    """Write ``backbone.onnx``, ``propagate.onnx`` and ``meta.json`` into ``out_dir``.

    Args:
        config, checkpoint: the evaluation config and its weights (None: the config's ``init_cfg``).
        out_dir: export folder (created if needed; an existing export there is replaced).
        options: sizes, labels, precisions and verification (:class:`ExportOptions`).
        cfg_options: overrides merged into the config (e.g. ``model.propagation.context_len``).
        allow_pickle: load a checkpoint that is a full pickle (trusted files only).
    Returns:
        The :class:`ExportMeta` written as ``meta.json``.
    """
    start = time.perf_counter()
    model, cfg = build_model(config, checkpoint, cfg_options, allow_pickle)
    image_size = options.image_size
    if image_size is None:
        dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', {})
        image_size = tuple(dataset_cfg.get('input_size') or DEFAULT_IMAGE_SIZE)
    meta = _plan_export(model, image_size, options, config, checkpoint)
    ensure_writable_dir(out_dir, ExportError, 'the export')
    step = PropagationStep(*meta.feat_size, meta.settings)
    _write_export(model.backbone, step, meta, out_dir, options)
    print_log(f'Wrote {out_dir} ({", ".join(MODEL_FILES.values())}, {META_FILE}) in '
              f'{time.perf_counter() - start:.1f} s', logger='current')
    return meta


def _plan_export(model: torch.nn.Module, image_size: Sequence[int], options: ExportOptions, config: str,
                 checkpoint: Optional[str]) -> ExportMeta:
    """The meta.json of an export of ``model`` at ``image_size`` (its checks done, its hashes still empty)."""
    backbone, settings = model.backbone, model.settings
    settings.check_fixed_context(config)
    feat_size = check_image_size(image_size, backbone.stride, settings.topk)
    image_size = tuple(int(v) for v in image_size)
    if options.dynamic and backbone.semantic is not None and backbone.fine_grained is not None \
            and backbone.semantic.stride != backbone.fine_grained.stride:
        # SFCBackbone resizes the semantic map only where the sizes differ, a test the trace fixes.
        raise ValueError(f'--dynamic needs branches of equal stride (semantic {backbone.semantic.stride}, '
                         f'fine-grained {backbone.fine_grained.stride}); export a fixed image size instead')
    with torch.no_grad():
        traced_size = tuple(backbone(torch.zeros(1, 3, *image_size)).shape[-2:])
    if traced_size != feat_size:
        raise ExportError(f'the backbone gives a {traced_size} feature map for {image_size}, expected {feat_size} '
                          f'(stride {backbone.stride})')
    fused = backbone.fine_grained is not None and backbone.semantic is not None
    min_input_side = model.min_input_side
    if network_input_size(image_size, min_input_side) != image_size:
        print_log(f'the model scales frames whose shorter side is below {min_input_side} up to it; this export runs '
                  f'every video at {image_size[0]}x{image_size[1]} (height x width), so on such footage its masks '
                  'differ from the torch backend\'s', logger='current', level=logging.WARNING)
    return ExportMeta(
        image_size=None if options.dynamic else list(image_size), export_image_size=list(image_size),
        feat_size=list(feat_size), stride=int(backbone.stride), channels=int(backbone.out_channels),
        num_labels=int(options.num_labels), propagation=settings.protocol(),
        fine_grained_weight=float(backbone.fine_grained_weight) if fused else None,
        normalization=_branch_normalization(backbone), opset=int(options.opset),
        precision='fp16' if options.fp16 else 'fp32', precisions=options.precisions,
        source_config=os.path.abspath(config), checkpoint=os.path.abspath(checkpoint) if checkpoint else None,
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None,
        sfc_plugin_version=__version__, torch_version=torch.__version__, onnx_version=onnx.__version__,
        onnxruntime_version=onnxruntime.__version__, sha256={}, min_input_side=min_input_side)


def _write_export(backbone: torch.nn.Module, step: PropagationStep, meta: ExportMeta, out_dir: str,
                  options: ExportOptions) -> None:
    """Trace both models into temporary files beside ``out_dir``'s, check and verify them, then commit."""
    temp_paths: Dict[str, str] = {}
    try:
        for name, file_name in MODEL_FILES.items():
            fd, temp_paths[name] = tempfile.mkstemp(prefix=f'.{file_name}.', suffix='.tmp', dir=out_dir)
            os.close(fd)
        _trace_models(backbone, step, meta, temp_paths)
        for name, path in temp_paths.items():
            dynamic_inputs = meta.dynamic_axes(name, inputs_only=True)
            report = check_tensorrt_compatibility(path, {tensor: tuple(axes)
                                                         for tensor, axes in dynamic_inputs.items()})
            meta.tensorrt_check[name] = report.errors
            if not report.ok:
                print_log(report.summary(MODEL_FILES[name]), logger='current', level=30)
        if options.verify:
            image_size = tuple(meta.export_image_size)
            sizes = [image_size]
            if options.dynamic:  # a second, smaller size
                sizes.append((max(meta.stride, image_size[0] // 2 + 3), max(meta.stride, image_size[1] // 2 + 5)))
            meta.verification = _verify(backbone, step, temp_paths, sizes, meta.num_labels, meta.precisions)
            print_log(f'onnxruntime vs PyTorch: {meta.verification["measured"]}', logger='current')
        meta.sha256 = {name: file_sha256(path) for name, path in temp_paths.items()}
        _commit(out_dir, temp_paths, meta)
    finally:
        for path in temp_paths.values():
            if os.path.exists(path):
                os.remove(path)


def _trace_models(backbone: torch.nn.Module, step: PropagationStep, meta: ExportMeta, paths: Dict[str, str]) -> None:
    """Trace the backbone and the propagation step to ``paths`` and finish both (shapes, constants, FP16)."""
    io_shapes = meta.io_shapes()
    image_size, feat_size, context_len = meta.export_image_size, meta.feat_size, step.context_len
    print_log(f'Exporting the backbone ({image_size[0]}x{image_size[1]}{", dynamic" if meta.dynamic else ""})',
              logger='current')
    _trace_to_onnx(backbone, (torch.zeros(1, 3, *image_size),), paths['backbone'], ['image'], ['features'],
                   meta.opset, meta.dynamic_axes('backbone') or None)
    _finish_model(paths['backbone'], io_shapes['backbone'], meta.precisions['backbone'] == 'fp16')
    print_log(f'Exporting the propagation step (features {feat_size[0]}x{feat_size[1]}x{meta.channels}, '
              f'context {context_len} + 1, {meta.num_labels} labels)', logger='current')
    example = (torch.zeros(meta.channels, *feat_size), torch.zeros(context_len + 1, meta.channels, *feat_size),
               torch.zeros(context_len + 1, meta.num_labels, *feat_size))
    _trace_to_onnx(step, example, paths['propagate'], ['query', 'context_feats', 'context_labels'], ['labels'],
                   meta.opset)
    _finish_model(paths['propagate'], io_shapes['propagate'], meta.precisions['propagate'] == 'fp16')


def _commit(out_dir: str, temp_paths: Dict[str, str], meta: ExportMeta) -> None:
    """Move the models into place and write meta.json last; an old meta.json goes first, so a folder
    caught half-way has no meta.json and is refused by :func:`load_export_meta`."""
    meta_path = os.path.join(out_dir, META_FILE)
    if os.path.exists(meta_path):
        os.remove(meta_path)
    for name, path in temp_paths.items():
        os.chmod(path, 0o644)  # mkstemp creates 0600 files
        os.replace(path, os.path.join(out_dir, MODEL_FILES[name]))
    write_export_meta(meta, meta_path)

