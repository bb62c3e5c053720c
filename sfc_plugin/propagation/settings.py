"""The propagation settings: the one place where each of them is declared.

:class:`PropagationSettings` is built once from a config's ``propagator`` dict and taken by everything that
propagates or describes propagation: the streaming propagator and the pure step, the evaluation model, the
ONNX export (``meta.json`` stores :meth:`PropagationSettings.protocol`), the runtime's backends and the run
summaries.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

SelectDType = Union[None, str, torch.dtype]

# Unit roundoff of the selection dtypes (the two-stage path's error bound).
UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}
_SELECT_DTYPE_NAMES = {'float16': torch.float16, 'fp16': torch.float16, 'bfloat16': torch.bfloat16,
                       'bf16': torch.bfloat16}


def cpu_supports(flag: str) -> bool:
    """Whether torch reports the CPU feature ``flag`` (e.g. ``_is_amx_tile_supported``); False on torch builds
    without that query."""
    check = getattr(torch.cpu, flag, None)
    return bool(check()) if check is not None else False


def resolve_select_dtype(select_dtype: SelectDType, device: Union[str, torch.device]) -> Optional[torch.dtype]:
    """The selection dtype to use on ``device``.

    ``'auto'``: float16 on CPUs with AMX-FP16, bfloat16 on CPUs with AMX-BF16 (there these products
    run 4-5x faster than fp32), otherwise None (exact fp32 only). On CUDA, fp32 products are fast and
    the two-stage path's host synchronisations would cost more than they save. Names
    ('float16', 'bfloat16') are accepted for configs.
    """
    if select_dtype is None or select_dtype in UNIT_ROUNDOFF:
        return select_dtype
    if isinstance(select_dtype, str) and select_dtype in _SELECT_DTYPE_NAMES:
        return _SELECT_DTYPE_NAMES[select_dtype]
    if select_dtype != 'auto':
        raise ValueError(f"select_dtype must be None, 'auto', torch.float16 or torch.bfloat16, got {select_dtype!r}")
    if torch.device(device).type != 'cpu':
        return None
    if cpu_supports('_is_amx_fp16_supported'):
        return torch.float16
    if cpu_supports('_is_amx_tile_supported') and cpu_supports('_is_avx512_bf16_supported'):
        return torch.bfloat16
    return None


@dataclass(frozen=True)
class PropagationSettings:
    """Every setting of label propagation (docs/method.md section 3).

    The protocol (what decides the labels; stored in exports, summaries and resumable runs):

    Args:
        topk: keys blended per query, taken jointly over all context keys.
        context_len: m, entries of the short-term window.
        radius: short-term keys at Euclidean distance ``< radius`` feature cells are used.
        temperature: softmax temperature of the top-k affinities.
        radius_on_first: restrict the long memory to the radius too.
        hard_labels: blend one-hot labels (argmax of the carried soft labels) instead of soft ones.
        pad_with_first: start the window with ``context_len`` copies of the first frame (the reference's
            front padding), else with that frame once.
        dilution_gain: beyond the reference (1.0, off): the largest per-frame gain that lifts a diluted object's
            propagated labels back toward a confident peak, so thin and small objects do not fade into the
            background (:func:`.labels.lift_diluted_objects`; masks only, channel 0 the background).
        guide_radius: beyond the reference (0, off: bilinear): the window radius, in feature cells, of the guided
            filter that upsamples a predicted frame's labels along the frame's own edges
            (:func:`.upsampling.upsample_labels`; masks only, the stored labels unchanged).
        guide_eps: the guided filter's regulariser (RGB in [0, 1]): smaller follows weaker edges.

    How the exact result is computed (the labels are the same, up to the order of tied keys):

    Args:
        select_dtype: None (exact fp32 products), torch.float16 / torch.bfloat16 (two-stage selection,
            still exact) or 'auto' (see :func:`resolve_select_dtype`).
        num_candidates: candidates per query rescored in fp32 by the two-stage path (default
            ``max(32, 2 * topk)``).
        tile_size: (tile_h, tile_w) of the tiled affinity; default :func:`.geometry.default_tile_size`.
        batch_tiles: score all tiles of a frame at once (exact path); None: on CUDA.
    """
    topk: int = 15
    context_len: int = 20
    radius: float = 15.0
    temperature: float = 0.1
    radius_on_first: bool = False
    hard_labels: bool = False
    pad_with_first: bool = True
    dilution_gain: float = 1.0
    guide_radius: float = 0.0
    guide_eps: float = 1e-4
    select_dtype: SelectDType = 'auto'
    num_candidates: Optional[int] = None
    tile_size: Optional[Tuple[int, int]] = None
    batch_tiles: Optional[bool] = None

    PROTOCOL = ('topk', 'context_len', 'radius', 'temperature', 'radius_on_first', 'hard_labels', 'pad_with_first',
                'dilution_gain', 'guide_radius', 'guide_eps')
    # Absent from protocols stored before they existed; their defaults are what those ran.
    ADDED_LATER = ('dilution_gain', 'guide_radius', 'guide_eps')

    def __post_init__(self) -> None:
        if self.tile_size is not None:
            object.__setattr__(self, 'tile_size', tuple(int(v) for v in self.tile_size))
        if self.topk < 1:
            raise ValueError(f'topk must be >= 1, got {self.topk}')
        if self.context_len < 1:
            raise ValueError(f'context_len must be >= 1, got {self.context_len}')
        if not self.radius > 0:
            raise ValueError(f'radius must be positive, got {self.radius}')
        if not self.temperature > 0:
            raise ValueError(f'temperature must be positive, got {self.temperature}')
        if not self.dilution_gain >= 1:
            raise ValueError(f'dilution_gain must be >= 1 (1: off), got {self.dilution_gain}')
        if not self.guide_radius >= 0:
            raise ValueError(f'guide_radius must be >= 0 (0: off), got {self.guide_radius}')
        if not self.guide_eps > 0:
            raise ValueError(f'guide_eps must be positive, got {self.guide_eps}')
        if self.num_candidates is not None and self.num_candidates < self.topk:
            raise ValueError(f'num_candidates ({self.num_candidates}) must be >= topk ({self.topk})')
        resolve_select_dtype(self.select_dtype, 'cpu')  # reject unknown names early

    @classmethod
    def from_config(cls, values: Mapping[str, Any], source: str = 'propagation') -> 'PropagationSettings':
        """Settings from a config dict (a model's ``propagation``) or a stored :meth:`protocol`; ValueError
        naming ``source`` and the unknown keys."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f'{source}: unknown propagation settings {unknown}; the settings are {names}')
        return cls(**values)

    @property
    def candidates(self) -> int:
        """Candidates per query of the two-stage path: ``num_candidates``, by default ``max(32, 2 * topk)``."""
        return self.num_candidates if self.num_candidates is not None else max(32, 2 * self.topk)

    @classmethod
    def complete_protocol(cls, stored: Mapping[str, Any]) -> Dict[str, Any]:
        """A stored :meth:`protocol` (an export's, a run's) with the settings added after it was written set to
        their defaults, which reproduce what it ran."""
        return {**{name: getattr(cls, name) for name in cls.ADDED_LATER}, **stored}

    def protocol(self) -> Dict[str, Any]:
        """The settings that decide the labels, as JSON values (exports, summaries, resume signatures)."""
        return {name: getattr(self, name) for name in self.PROTOCOL}

    def check_fixed_context(self, source: str) -> None:
        """ValueError naming ``source`` unless every frame's context holds exactly ``context_len`` short-term entries,
        as a fixed-size exported step takes them: only the padded window (``pad_with_first``) has them from the
        first frame on. The one rule for exporting a model and for running an export."""
        if not self.pad_with_first:
            raise ValueError(f'{source}: pad_with_first is false; an exported propagation step takes exactly '
                             f'context_len ({self.context_len}) short-term entries, which only the padded window has '
                             'from the first frame on: run this model with the torch backend')

    def replace(self, **changes: Any) -> 'PropagationSettings':
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)
