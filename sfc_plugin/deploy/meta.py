"""The export folder's ``meta.json``: what the runtime needs to run ``backbone.onnx`` and ``propagate.onnx``.

An export folder holds ``backbone.onnx`` (image -> L2-normalised stride-8 features), ``propagate.onnx``
(one step of the propagation core) and ``meta.json``, written last. :func:`load_export_meta` is the one
reader: it checks the format version, the files and their SHA-256, and that the models' inputs and outputs
have the shapes the meta promises, so a stale or half-written folder is refused with a clear message.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from sfc_plugin.propagation import PropagationSettings
from sfc_plugin.utils import file_sha256, read_json, write_json

# 2: the propagation settings as one object, ``propagation`` (PropagationSettings.protocol()); version 1 listed
# them as top-level keys, which are still read. 3: the settings include ``dilution_gain``; an older export predates
# it and propagates without it (1.0). 4: they include ``guide_radius`` and ``guide_eps``; an older export decodes
# with bilinear upsampling (radius 0).
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
META_FILE = 'meta.json'
MODEL_FILES = {'backbone': 'backbone.onnx', 'propagate': 'propagate.onnx'}
PRECISIONS = ('fp32', 'fp16')
Dim = Union[int, str]  # a fixed size or the name of a dynamic dimension


class ExportFormatError(ValueError):
    """An export folder, its meta.json or one of its models is missing, stale or inconsistent."""


@dataclass
class ExportMeta:
    """Contents of ``meta.json`` (see the module docstring). Sizes are ``[height, width]``.

    ``image_size`` is None for a backbone exported with dynamic height and width;
    ``export_image_size`` is then the size the backbone was traced and verified at, whose feature map
    ``feat_size`` the propagation model (always fixed-size) was exported for.
    """
    image_size: Optional[List[int]]
    export_image_size: List[int]
    feat_size: List[int]
    stride: int
    channels: int
    num_labels: int
    propagation: Dict[str, Any]  # PropagationSettings.protocol()
    fine_grained_weight: Optional[float]
    normalization: Dict[str, Dict[str, List[float]]]
    opset: int
    precision: str  # 'fp16' when exported with --fp16
    precisions: Dict[str, str]  # per model: propagate.onnx stays FP32 unless --fp16-propagate
    source_config: str
    checkpoint: Optional[str]
    checkpoint_sha256: Optional[str]
    sfc_plugin_version: str
    torch_version: str
    onnx_version: str
    onnxruntime_version: str
    sha256: Dict[str, str]
    files: Dict[str, str] = field(default_factory=lambda: dict(MODEL_FILES))
    verification: Dict[str, dict] = field(default_factory=dict)
    tensorrt_check: Dict[str, List[str]] = field(default_factory=dict)
    # The model's min_input_side (None: frames at their own size). The export runs every video at
    # export_image_size (propagate.onnx is fixed-size); the runtime says when the model would not.
    min_input_side: Optional[int] = None
    format_version: int = FORMAT_VERSION

    @property
    def dynamic(self) -> bool:
        return self.image_size is None

    @property
    def settings(self) -> PropagationSettings:
        """The propagation settings the step was exported with (an exported step is exact fp32)."""
        return PropagationSettings.from_config(self.propagation, META_FILE).replace(select_dtype=None)

    def io_shapes(self) -> Dict[str, Dict[str, Dict[str, List[Dim]]]]:
        """Expected ``{model: {'inputs'|'outputs': {tensor: shape}}}``; dynamic dims are named."""
        h, w = self.feat_size
        c, k, m = self.channels, self.num_labels, self.propagation['context_len']
        height, width = self.image_size if self.image_size is not None else ('height', 'width')
        feat_h, feat_w = (h, w) if self.image_size is not None else ('feat_height', 'feat_width')
        return {
            'backbone': {'inputs': {'image': [1, 3, height, width]},
                         'outputs': {'features': [1, c, feat_h, feat_w]}},
            'propagate': {'inputs': {'query': [c, h, w], 'context_feats': [m + 1, c, h, w],
                                     'context_labels': [m + 1, k, h, w]},
                          'outputs': {'labels': [k, h, w]}},
        }

    def dynamic_axes(self, model: str, inputs_only: bool = False) -> Dict[str, Dict[int, str]]:
        """``{tensor: {axis: name}}`` of the dynamic dims of ``model`` (of its inputs only, if asked), as
        ``torch.onnx.export`` takes them: the named dims of :meth:`io_shapes`, their one description."""
        shapes = self.io_shapes()[model]
        groups = [shapes['inputs']] if inputs_only else [shapes['inputs'], shapes['outputs']]
        return {tensor: {axis: dim for axis, dim in enumerate(shape) if isinstance(dim, str)}
                for group in groups for tensor, shape in group.items() if any(isinstance(dim, str) for dim in shape)}

    def model_path(self, export_dir: str, model: str) -> str:
        """Path of ``'backbone'`` or ``'propagate'`` in ``export_dir``."""
        return os.path.join(export_dir, self.files[model])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str) -> 'ExportMeta':
        if values.get('format_version') == 1:  # the settings were top-level keys
            protocol = {name: values[name] for name in PropagationSettings.PROTOCOL if name in values}
            values = dict(values, propagation=protocol, format_version=2)
        if values.get('format_version') in (2, 3) and isinstance(values.get('propagation'), dict):
            values = dict(values, propagation=PropagationSettings.complete_protocol(values['propagation']),
                          format_version=FORMAT_VERSION)
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(values))
        if missing:
            raise ExportFormatError(f'{source}: missing keys {missing}')
        return cls(**{key: value for key, value in values.items() if key in names})


def onnx_io_shapes(model) -> Dict[str, Dict[str, List[Dim]]]:
    """``{'inputs'|'outputs': {name: shape}}`` of an ``onnx.ModelProto`` (dims: int or dim_param)."""
    def shape(value) -> List[Dim]:
        return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                for d in value.type.tensor_type.shape.dim]

    initializers = {init.name for init in model.graph.initializer}
    return {'inputs': {v.name: shape(v) for v in model.graph.input if v.name not in initializers},
            'outputs': {v.name: shape(v) for v in model.graph.output}}


def check_model_io(model, expected: Dict[str, Dict[str, List[Dim]]], source: str) -> None:
    """Raise ExportFormatError unless the model's float32 inputs/outputs have the ``expected`` shapes.

    Fixed dims must be equal; a dim named in ``expected`` (dynamic) must be dynamic in the model.
    """
    import onnx
    actual = onnx_io_shapes(model)
    elem_types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)}
    problems = []
    for kind in ('inputs', 'outputs'):
        if sorted(actual[kind]) != sorted(expected[kind]):
            problems.append(f'{kind} {sorted(actual[kind])}, expected {sorted(expected[kind])}')
            continue
        for name, want in expected[kind].items():
            got = actual[kind][name]
            same = len(got) == len(want) and all(
                (isinstance(w, str) and isinstance(g, str)) or g == w for g, w in zip(got, want))
            if not same:
                problems.append(f'{name} has shape {got}, expected {want}')
            if elem_types[name] != onnx.TensorProto.FLOAT:
                problems.append(f'{name} is {onnx.TensorProto.DataType.Name(elem_types[name])}, expected FLOAT')
    if problems:
        raise ExportFormatError(f'{source} does not match meta.json: ' + '; '.join(problems))


def write_export_meta(meta: ExportMeta, path: str) -> None:
    """Write ``meta`` as JSON, atomically."""
    write_json(path, meta.to_dict(), indent=2)


def load_export_meta(export_dir: str, check_models: bool = True, check_hashes: bool = True) -> ExportMeta:
    """Read and validate ``export_dir/meta.json``.

    Args:
        export_dir: folder written by ``sfc-export onnx``.
        check_models: load both ONNX graphs (not their weights) and compare their inputs and
            outputs with the meta.
        check_hashes: compare each model file's SHA-256 with the one recorded at export.
    Raises:
        ExportFormatError: naming the file and the mismatch (missing folder, meta.json or model,
            unreadable JSON, wrong format_version, missing keys, bad values, hash or shape mismatch).
    """
    meta_path = os.path.join(export_dir, META_FILE)
    if not os.path.isdir(export_dir):
        raise ExportFormatError(f'{export_dir}: no such export folder')
    if not os.path.isfile(meta_path):
        raise ExportFormatError(f'{meta_path}: missing (not an export folder, or an export that did not finish; '
                                'run sfc-export onnx again)')
    values = read_json(meta_path, ExportFormatError, 'missing')
    if not isinstance(values, dict):
        raise ExportFormatError(f'{meta_path}: expected a JSON object, got {type(values).__name__}')
    if values.get('format_version') not in READABLE_VERSIONS:
        raise ExportFormatError(f'{meta_path}: format_version {values.get("format_version")!r}, this sfc_plugin '
                                f'reads format_version {" or ".join(map(str, READABLE_VERSIONS))}; export again with '
                                'this version')
    meta = ExportMeta.from_dict(values, meta_path)
    _check_values(meta, meta_path)

    models = {}
    for name in MODEL_FILES:
        path = meta.model_path(export_dir, name)
        if not os.path.isfile(path):
            raise ExportFormatError(f'{path}: missing ({meta_path} lists it as the {name} model)')
        if check_hashes and file_sha256(path) != meta.sha256.get(name):
            raise ExportFormatError(f'{path}: SHA-256 differs from the one in {meta_path} (the file was '
                                    'replaced or only partly written); export again')
        models[name] = path
    if check_models:
        import onnx
        expected = meta.io_shapes()
        for name, path in models.items():
            try:
                model = onnx.load(path, load_external_data=False)
            except Exception as error:  # onnx raises DecodeError, OSError, ...
                raise ExportFormatError(f'{path}: cannot read the ONNX model ({error})') from error
            check_model_io(model, expected[name], path)
    return meta


def _check_values(meta: ExportMeta, source: str) -> None:
    problems = []
    if meta.precision not in PRECISIONS:
        problems.append(f'precision {meta.precision!r} is not one of {PRECISIONS}')
    if sorted(meta.precisions) != sorted(MODEL_FILES) or not set(meta.precisions.values()) <= set(PRECISIONS):
        problems.append(f'precisions must give one of {PRECISIONS} per model, got {meta.precisions!r}')
    if sorted(meta.files) != sorted(MODEL_FILES):
        problems.append(f'files lists {sorted(meta.files)}, expected {sorted(MODEL_FILES)}')
    for name in ('export_image_size', 'feat_size'):
        size = getattr(meta, name)
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            problems.append(f'{name} must be [height, width] of positive integers, got {size!r}')
    if meta.image_size is not None and meta.image_size != meta.export_image_size:
        problems.append(f'image_size {meta.image_size} differs from export_image_size {meta.export_image_size}')
    for name in ('stride', 'channels', 'num_labels'):
        value = getattr(meta, name)
        if not (isinstance(value, int) and value > 0):
            problems.append(f'{name} must be a positive integer, got {value!r}')
    try:
        if not isinstance(meta.propagation, dict) or sorted(meta.propagation) != sorted(PropagationSettings.PROTOCOL):
            raise ValueError(f'propagation must give {list(PropagationSettings.PROTOCOL)}, got {meta.propagation!r}')
        settings = meta.settings
        if not isinstance(settings.context_len, int) or not isinstance(settings.topk, int):
            raise ValueError(f'topk and context_len must be integers, got {meta.propagation!r}')
    except (TypeError, ValueError) as error:
        problems.append(str(error))
    if problems:
        raise ExportFormatError(f'{source}: ' + '; '.join(problems))
