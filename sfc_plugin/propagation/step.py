"""One propagation step over the tiled memory: the pure function and its ONNX module.

A query frame is predicted from the long memory (the annotated frame, all keys) and the short-term
window of m frames (keys strictly within ``radius`` cells only): top-k of the affinities taken
jointly over all context keys, ``softmax(values / temperature)``, weighted sum of those keys' soft
labels. The dense formulation scores ``(m + 1) HW x HW`` pairs and masks ~89 % away
(:mod:`.reference`); this core scores the long memory with one ``HW x HW`` product and each query
tile only against the key tiles around it (:mod:`.geometry`), so the work is about
``HW x (HW + m x 1470)`` multiply-adds per channel at DAVIS size instead of ``21 x HW x HW``.

The top-k is exact either way: fp32 products (:mod:`.exact`; static control flow, traceable for ONNX) or
low-precision products with fp32 rescoring (:mod:`.two_stage`). Ties between equal scores may be broken
differently from the dense reference.
"""
from collections import Counter
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .exact import propagate_batched, propagate_exact
from .geometry import TileGeometry
from .memory import ContextMemory
from .settings import PropagationSettings, resolve_select_dtype
from .two_stage import propagate_select

# The pure step's settings when none are given: exact fp32 products.
EXACT = PropagationSettings(select_dtype=None)


def predict_tiles(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                  last_slot: int, stats: Counter) -> Tensor:
    """(nT, T, C) query tiles -> (nT, T, K) soft labels from ``memory``, by the path its geometry and
    selection dtype call for.

    Args:
        copies: copies of the long-memory frame at the front of the short-term window.
        last_slot: slots ``1 .. last_slot - 1`` hold the distinct short-term frames.
        stats: counts of the two-stage path (queries, selected, reselected, recomputed), updated in place.
    """
    if memory.select_dtype is None and memory.geometry.pad_rows:
        return propagate_batched(query_tiles, memory, settings, copies, last_slot)
    if memory.select_dtype is None:
        return propagate_exact(query_tiles, memory, settings, copies, last_slot)
    return propagate_select(query_tiles, memory, settings, copies, last_slot, stats)


def batch_tiles(settings: PropagationSettings, device: Union[str, torch.device]) -> bool:
    """Whether the exact step scores all tiles at once: ``settings.batch_tiles``, by default on CUDA (where a
    loop over tile rows would wait for the device at every row) with exact selection."""
    exact = resolve_select_dtype(settings.select_dtype, device) is None
    if settings.batch_tiles is None:
        return exact and torch.device(device).type == 'cuda'
    if settings.batch_tiles and not exact:
        raise ValueError('batch_tiles is the exact fp32 path: use select_dtype=None with it')
    return settings.batch_tiles


def _check_maps(name: str, maps: Tensor, dims: int, size: Tuple[int, int]) -> None:
    if not isinstance(maps, Tensor) or maps.dim() != dims or tuple(maps.shape[-2:]) != tuple(size):
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f'{name}: expected a {dims}-d tensor of maps of {size[0]} x {size[1]} cells, got {shape}')


@torch.no_grad()
def propagate_step(query: Tensor,
                   long_feat: Tensor,
                   long_labels: Tensor,
                   short_feats: Tensor,
                   short_labels: Tensor,
                   num_first_copies: int = 0,
                   settings: Optional[PropagationSettings] = None,
                   geometry: Optional[TileGeometry] = None) -> Tensor:
    """Soft labels of one query frame from its context (a pure function).

    Args:
        query: (C, h, w) L2-normalised features of the frame to predict.
        long_feat, long_labels: (C, h, w) and (K, h, w), the long memory (the annotated frame).
        short_feats, short_labels: (n, C, h, w) and (n, K, h, w), the distinct frames of the
            short-term window (n may be 0).
        num_first_copies: copies of the long-memory frame at the front of the short-term window
            (the reference's front padding in the first m frames).
        settings: :class:`PropagationSettings`; with ``select_dtype=None`` (default) the step is
            exact fp32 with static control flow (see :class:`PropagationStep` for export).
        geometry: precomputed :class:`TileGeometry` for this map size, radius and tile size.
    Returns:
        (K, h, w) soft labels.
    """
    settings = settings if settings is not None else EXACT
    size = tuple(query.shape[-2:])
    _check_maps('query', query, 3, size)
    _check_maps('long_feat', long_feat, 3, size)
    _check_maps('long_labels', long_labels, 3, size)
    _check_maps('short_feats', short_feats, 4, size)
    _check_maps('short_labels', short_labels, 4, size)
    if short_feats.shape[0] != short_labels.shape[0]:
        raise ValueError(f'{short_feats.shape[0]} short-term frames but {short_labels.shape[0]} label maps')
    batched = batch_tiles(settings, query.device)
    if geometry is None:
        geometry = TileGeometry(size[0], size[1], settings.radius, settings.tile_size, query.device, batched)
    elif batched and not geometry.pad_rows:
        raise ValueError('batch_tiles needs a TileGeometry made with pad_rows=True')
    return _propagate_frames(query, long_feat, long_labels, short_feats, short_labels, short_feats.shape[0],
                             num_first_copies, settings, geometry)


def _propagate_frames(query: Tensor, long_feat: Tensor, long_labels: Tensor, short_feats: Tensor,
                      short_labels: Tensor, num_short: int, copies: int, settings: PropagationSettings,
                      geometry: TileGeometry) -> Tensor:
    """:func:`propagate_step` without checks; sizes are Python ints (static when traced)."""
    select_dtype = resolve_select_dtype(settings.select_dtype, query.device)
    memory = ContextMemory.from_frames(geometry, long_feat, long_labels, short_feats, short_labels, num_short,
                                       settings.hard_labels, select_dtype)
    tiles = predict_tiles(geometry.to_tiles(query), memory, settings, copies, 1 + num_short, Counter())
    return geometry.from_tiles(tiles)


class PropagationStep(torch.nn.Module):
    """The exact fp32 step with fixed shapes and the reference's context layout, for ONNX export.

    ``forward(query (C, h, w), context_feats (m + 1, C, h, w), context_labels (m + 1, K, h, w))``
    returns (K, h, w); context index 0 is the long memory, the other m entries the short-term
    window as real frames (the first frames' copies of frame 0 included).

    Args:
        height, width: feature-map size.
        settings: :class:`PropagationSettings` (m is its ``context_len``); the step is exact fp32, so
            ``select_dtype`` must be None or 'auto' (which resolves to fp32 here).
        device: where the static index tensors live (that of the inputs when tracing).
    """

    def __init__(self, height: int, width: int, settings: Optional[PropagationSettings] = None,
                 device: Union[str, torch.device] = 'cpu') -> None:
        super().__init__()
        settings = settings if settings is not None else EXACT
        if settings.select_dtype not in (None, 'auto'):
            raise ValueError(f'PropagationStep is the exact fp32 step: select_dtype must be None or auto, got '
                             f'{settings.select_dtype!r}')
        self.settings = settings.replace(select_dtype=None)
        self.context_len = settings.context_len
        self.geometry = TileGeometry(height, width, self.settings.radius, self.settings.tile_size, device)

    def forward(self, query: Tensor, context_feats: Tensor, context_labels: Tensor) -> Tensor:
        return _propagate_frames(query, context_feats[0], context_labels[0], context_feats[1:], context_labels[1:],
                                 self.context_len, 0, self.settings, self.geometry)
