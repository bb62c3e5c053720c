"""The label-propagation core (METHOD.md section 3): one algorithm for evaluation, runtime and export.

A query frame is predicted from the long memory (the annotated frame, all keys) and the short-term
window of m frames (keys strictly within ``radius`` cells only): top-k of the affinities taken
jointly over all context keys, ``softmax(values / temperature)``, weighted sum of those keys' soft
labels. The dense formulation scores ``(m + 1) HW x HW`` pairs and masks ~89 % away
(:mod:`.reference`); this core scores the long memory with one ``HW x HW`` product and each query
tile only against the key tiles around it (:mod:`.geometry`), so the work is about
``HW x (HW + m x 1470)`` multiply-adds per channel at DAVIS size instead of ``21 x HW x HW``.

Two ways to get the exact top-k:

- exact (``select_dtype=None``): fp32 products, processed one row of tiles at a time. The function
  :func:`propagate_step` is a pure tensor function with static control flow, traceable for ONNX.
- two-stage (``select_dtype=torch.float16 / bfloat16``): the same products in the low-precision
  dtype (AMX on recent Xeons runs them 4-5x faster) pick ``num_candidates`` per query, which are
  rescored in fp32. A query is accepted when the last picked approximate score plus a rigorous
  bound on the approximation error is below the k-th exact score, so no unpicked key can belong to
  the exact top-k; the others are retried with 8x the candidates, then computed exactly. The
  error bound assumes the low-precision products accumulate in fp32, as oneDNN's (AMX) and
  torch's CPU kernels do.

The exact step scores the context in parts (the long memory, each key-tile shift, the first frame's copies),
each cut to its own top-k before a last top-k over those candidates. On CUDA it scores all tiles of a frame
at once (``batch_tiles``): one product per key-tile shift over every query tile, no Python loop over tiles
and no host synchronisation; its largest temporary is the long memory's scores (180 MB at DAVIS size).

Ties between equal scores may be broken differently from the dense reference.
"""
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import TileGeometry
from .window import ContextWindow

NEG_INF = float('-inf')
SelectDType = Union[None, str, torch.dtype]

# Unit roundoff of the selection dtypes and of fp32.
_UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}
_FP32_UNIT_ROUNDOFF = 2.0 ** -24
# Rows of fp32 keys gathered at once when rescoring candidates (bounds the temporary to ~40 MB).
_RESCORE_ROWS = 8192
_SELECT_DTYPE_NAMES = {'float16': torch.float16, 'fp16': torch.float16, 'bfloat16': torch.bfloat16,
                       'bf16': torch.bfloat16}


def _cpu_supports(flag: str) -> bool:
    check = getattr(torch.cpu, flag, None)
    return bool(check()) if check is not None else False


def resolve_select_dtype(select_dtype: SelectDType, device: Union[str, torch.device]) -> Optional[torch.dtype]:
    """The selection dtype to use on ``device``.

    ``'auto'``: float16 on CPUs with AMX-FP16, bfloat16 on CPUs with AMX-BF16 (there these products
    run 4-5x faster than fp32), otherwise None (exact fp32 only). On CUDA, fp32 products are fast and
    the two-stage path's host synchronisations would cost more than they save. Names
    ('float16', 'bfloat16') are accepted for configs.
    """
    if select_dtype is None or select_dtype in _UNIT_ROUNDOFF:
        return select_dtype
    if isinstance(select_dtype, str) and select_dtype in _SELECT_DTYPE_NAMES:
        return _SELECT_DTYPE_NAMES[select_dtype]
    if select_dtype != 'auto':
        raise ValueError(f"select_dtype must be None, 'auto', torch.float16 or torch.bfloat16, got {select_dtype!r}")
    if torch.device(device).type != 'cpu':
        return None
    if _cpu_supports('_is_amx_fp16_supported'):
        return torch.float16
    if _cpu_supports('_is_amx_tile_supported') and _cpu_supports('_is_avx512_bf16_supported'):
        return torch.bfloat16
    return None


@dataclass(frozen=True)
class PropagationSettings:
    """Settings of one propagation step (see :class:`LabelPropagator` for their meaning)."""
    topk: int = 15
    radius: float = 15.0
    temperature: float = 0.1
    radius_on_first: bool = False
    hard_labels: bool = False
    select_dtype: SelectDType = None
    num_candidates: Optional[int] = None  # default max(32, 2 * topk)
    tile_size: Optional[Tuple[int, int]] = None
    batch_tiles: Optional[bool] = None  # all tiles at once (exact path); None: on CUDA

    def __post_init__(self) -> None:
        if self.num_candidates is None:
            object.__setattr__(self, 'num_candidates', max(32, 2 * self.topk))
        if self.topk < 1:
            raise ValueError(f'topk must be >= 1, got {self.topk}')
        if not self.radius > 0:
            raise ValueError(f'radius must be positive, got {self.radius}')
        if not self.temperature > 0:
            raise ValueError(f'temperature must be positive, got {self.temperature}')
        if self.num_candidates < self.topk:
            raise ValueError(f'num_candidates ({self.num_candidates}) must be >= topk ({self.topk})')
        resolve_select_dtype(self.select_dtype, 'cpu')  # reject unknown names early


def _hard(labels: Tensor) -> Tensor:
    """One-hot of the argmax over the last dimension."""
    return F.one_hot(labels.argmax(-1), labels.shape[-1]).to(labels.dtype)


def _rounding_stats(keys: Tensor, rounded: Tensor) -> Tuple[Tensor, Tensor]:
    """Largest ``||k - k_select||`` and ``||k_select||`` over fp32 keys (..., C) and their rounded copies."""
    rounded = rounded.float()
    return (keys - rounded).norm(dim=-1).max(), rounded.norm(dim=-1).max()


def _to_ring(tiles: Tensor, geometry: TileGeometry) -> Tensor:
    """(slots, nT, T, D) tiles -> (ring_tiles, slots * T, D) ring with zero padding tiles."""
    ring = tiles.transpose(0, 1).flatten(1, 2)
    return F.pad(ring, (0, 0, 0, 0, geometry.ring_pad, geometry.ring_pad))


class ContextMemory:
    """The context in the ring layout of :mod:`.geometry`: slot 0 is the long memory, slots 1.. the
    distinct short-term frames.

    Attributes:
        ring: (ring_tiles, slots * T, C) fp32 keys; ring tile ``ring_pad + t`` holds tile ``t`` of
            every slot, slot-major.
        ring_labels: (ring_tiles, slots * T, K) their soft labels.
        long: (h * w, C) fp32 long-memory keys in raster order (operand of the unrestricted product).
        ring_select, long_select: the same keys in the selection dtype (two-stage path only).
        key_error, key_norm: (slots,) largest ``||k - k_select||`` and ``||k_select||`` of a slot.
    """

    def __init__(self, geometry: TileGeometry, ring: Tensor, ring_labels: Tensor, long: Tensor, num_slots: int,
                 select_dtype: Optional[torch.dtype]) -> None:
        self.geometry = geometry
        self.ring, self.ring_labels, self.long = ring, ring_labels, long
        self.num_slots = num_slots
        self.select_dtype = select_dtype
        self.ring_select = self.long_select = self.key_error = self.key_norm = None
        if select_dtype is not None:
            self.ring_select = ring.to(select_dtype)
            self.long_select = long.to(select_dtype)
            cells = geometry.tile_cells
            slot_stats = [_rounding_stats(ring[:, slot * cells:(slot + 1) * cells],
                                          self.ring_select[:, slot * cells:(slot + 1) * cells])
                          for slot in range(self.num_slots)]
            self.key_error = torch.stack([error for error, _ in slot_stats])
            self.key_norm = torch.stack([norm for _, norm in slot_stats])

    @classmethod
    def allocate(cls, geometry: TileGeometry, num_slots: int, channels: int, num_classes: int,
                 select_dtype: Optional[torch.dtype]) -> 'ContextMemory':
        """Zero memory for ``num_slots`` slots, filled later with :meth:`write`."""
        rows = num_slots * geometry.tile_cells
        device = geometry.device
        return cls(geometry,
                   torch.zeros(geometry.ring_tiles, rows, channels, device=device),
                   torch.zeros(geometry.ring_tiles, rows, num_classes, device=device),
                   torch.zeros(geometry.height * geometry.width, channels, device=device),
                   num_slots, select_dtype)

    @classmethod
    def from_frames(cls, geometry: TileGeometry, long_feat: Tensor, long_labels: Tensor, short_feats: Tensor,
                    short_labels: Tensor, num_short: int, hard_labels: bool,
                    select_dtype: Optional[torch.dtype]) -> 'ContextMemory':
        """Memory holding ``long_feat`` (C, h, w) and the ``num_short`` frames ``short_feats``
        (num_short, C, h, w), with their labels."""
        feat_tiles = geometry.to_tiles(torch.cat([long_feat[None], short_feats]))  # (1 + n, nT, T, C)
        label_tiles = geometry.to_tiles(torch.cat([long_labels[None], short_labels]))
        if hard_labels:
            label_tiles = _hard(label_tiles)
        return cls(geometry, _to_ring(feat_tiles, geometry), _to_ring(label_tiles, geometry),
                   long_feat.flatten(1).T.contiguous(), 1 + num_short, select_dtype)

    def _cells(self, slot: int) -> Tuple[slice, slice]:
        cells = self.geometry.tile_cells
        return slice(self.geometry.ring_pad, self.geometry.ring_pad + self.geometry.num_tiles), \
            slice(slot * cells, (slot + 1) * cells)

    def write(self, slot: int, feat_tiles: Tensor, label_tiles: Tensor) -> None:
        """Store a frame's (nT, T, C) feature and (nT, T, K) label tiles in ``slot``."""
        tiles, cells = self._cells(slot)
        self.ring[tiles, cells] = feat_tiles
        self.ring_labels[tiles, cells] = label_tiles
        if slot == 0:
            self.long.copy_(feat_tiles.flatten(0, 1)[self.geometry.raster_cells])
        if self.select_dtype is not None:
            rounded = feat_tiles.to(self.select_dtype)
            self.ring_select[tiles, cells] = rounded
            if slot == 0:
                self.long_select.copy_(self.long)
            self.key_error[slot], self.key_norm[slot] = _rounding_stats(feat_tiles, rounded)

    def copy_slot(self, source: int, target: int) -> None:
        """Copy slot ``source`` into slot ``target``."""
        tiles, source_cells = self._cells(source)
        _, target_cells = self._cells(target)
        buffers = [self.ring, self.ring_labels] + ([self.ring_select] if self.select_dtype is not None else [])
        for buffer in buffers:
            buffer[tiles, target_cells] = buffer[tiles, source_cells]
        if self.select_dtype is not None:
            self.key_error[target] = self.key_error[source]
            self.key_norm[target] = self.key_norm[source]

    def nbytes(self) -> int:
        tensors = [self.ring, self.ring_labels, self.long, self.ring_select, self.long_select, self.key_error,
                   self.key_norm]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _context_scores(query: Tensor, long_keys: Tensor, ring: Tensor, geometry: TileGeometry, first_tile: int,
                    num: int, shifts: List[int], num_slots: int, last_slot: int, copies: int,
                    radius_on_first: bool) -> Tuple[Tensor, Tensor]:
    """Scores of query tiles against every context key they may use; -inf where out of reach (the
    two-stage path's full score lists; the exact paths use :func:`_exact_topk`).

    Args:
        query: (num, T, C) tiles ``first_tile .. first_tile + num - 1``, in the dtype of ``long_keys``
            (h * w, C) and ``ring`` (ring_tiles, num_slots * T, C).
        shifts: the key-tile shifts to score (those inside the map for the tiles' row).
        last_slot: slots ``1 .. last_slot - 1`` hold the distinct short-term frames.
        copies: copies of the long-memory frame at the front of the short-term window; they are
            restricted to the radius and counted ``copies`` times, as the reference's real entries.
    Returns:
        scores (n, T, N) and rows (n, N), the ring row of the key behind each column. Columns: the
        long memory (unless ``radius_on_first``), the short-term slots by shift, then the copies.
    """
    g = geometry
    cells = g.tile_cells
    tiles = slice(first_tile, first_tile + num)
    pair_ok = g.pair_ok[tiles][:, :, shifts]  # (n, T, S', T)
    scores, rows = [], []
    if not radius_on_first:
        long_scores = (query.flatten(0, 1) @ long_keys.T).view(num, cells, -1)  # (n, T, h * w)
        scores.append(long_scores)
        rows.append(g.long_rows(num_slots).expand(num, -1))
    first_slot = 0 if radius_on_first else 1
    if last_slot > first_slot:
        keys_rows = slice(first_slot * cells, last_slot * cells)
        blocks = []
        for shift in shifts:
            start = g.ring_pad + first_tile + g.shift_offsets[shift]
            keys = ring[start:start + num, keys_rows]  # (n, U * T, C)
            # One tile: a plain product (oneDNN's fp16/bf16 batched product copies strided batches).
            blocks.append(torch.bmm(query, keys.transpose(1, 2)) if num > 1 else (query[0] @ keys[0].T)[None])
        short = torch.stack(blocks, 2).unflatten(3, (last_slot - first_slot, cells))  # (n, T, S', U, T)
        short = short.masked_fill(~pair_ok.unsqueeze(3), NEG_INF)
        scores.append(short.flatten(2))
        rows.append(g.short_rows(first_tile, num, num_slots, first_slot, last_slot)[:, shifts].flatten(1))
    if copies:
        if radius_on_first:
            first_frame = short[:, :, :, 0].flatten(2)  # slot 0 is the long memory
        else:
            columns = g.long_columns[tiles][:, shifts].view(num, 1, -1).expand(num, cells, -1)
            first_frame = long_scores.gather(2, columns).masked_fill(~pair_ok.flatten(2), NEG_INF)
        scores.append(first_frame.repeat(1, 1, copies))
        rows.append(g.short_rows(first_tile, num, num_slots, 0, 1)[:, shifts].flatten(1).repeat(1, copies))
    return torch.cat(scores, 2), torch.cat(rows, 1)


def _blend(values: Tensor, key_rows: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """softmax(values / temperature) weighted sum of the keys' labels: (..., k) -> (..., K)."""
    weights = torch.softmax(values / temperature, dim=-1)
    return (weights.unsqueeze(-1) * labels[key_rows]).sum(-2)


def _part_topk(scores: Tensor, rows: Tensor, topk: int) -> Tuple[Tensor, Tensor]:
    """The largest ``min(topk, N)`` of (n, T, N) scores, sorted, and the ring rows (n, T, k') behind them;
    ``rows``: (n, N), the ring row of each column."""
    values, columns = scores.topk(min(topk, scores.shape[-1]), dim=-1)
    return values, rows.gather(1, columns.flatten(1)).view_as(columns)


def _mask_keys(block: Tensor, pair_ok: Tensor) -> Tensor:
    """-inf in (n, T, U * T) scores where (n, T, T) ``pair_ok`` is False for every slot; in place, except when
    traced (the ONNX exporter loses in-place writes through views)."""
    n, cells = pair_ok.shape[:2]
    slots = block.view(n, cells, -1, cells)
    outside = ~pair_ok.unsqueeze(2)
    if torch.jit.is_tracing():
        return slots.masked_fill(outside, NEG_INF).flatten(2)
    slots.masked_fill_(outside, NEG_INF)
    return block


def _exact_topk(query: Tensor, memory: ContextMemory, first_tile: int, num: int, shifts: Optional[List[int]],
                last_slot: int, copies: int, settings: PropagationSettings) -> Tuple[Tensor, Tensor]:
    """Exact fp32 top-k scores (n, T, k), sorted, and their ring rows for the query tiles ``first_tile ..
    first_tile + num - 1`` ((num, T, C) ``query``).

    The context is scored in parts, each cut to its own top-k before a last top-k over those candidates
    (the top-k of a union is the top-k of its parts' top-ks): the long memory (one product), the short-term
    slots at each key-tile shift (one batched product, masked in place), and the copies of the long-memory
    frame at the front of the window (its scores within the radius, counted ``copies`` times). No score
    tensor of the whole context is formed, copied or concatenated.

    Args:
        shifts: the key-tile shifts inside the map for these tiles' row; None: all of them (geometry with
            ``pad_rows``; then no index is built from a Python list, and nothing waits for the device).
        last_slot: slots ``1 .. last_slot - 1`` hold the distinct short-term frames.
    """
    g = memory.geometry
    cells, topk = g.tile_cells, settings.topk
    tiles = slice(first_tile, first_tile + num)
    pair_ok, long_columns = g.pair_ok[tiles], g.long_columns[tiles]  # (n, T, S, T), (n, S, T)
    ring_rows = g.short_rows(first_tile, num, memory.num_slots, 0, last_slot)  # (n, S, last_slot, T)
    offsets = g.shift_offsets
    if shifts is not None:
        pair_ok, long_columns, ring_rows = pair_ok[:, :, shifts], long_columns[:, shifts], ring_rows[:, shifts]
        offsets = [offsets[shift] for shift in shifts]
    parts, first_frame = [], []
    if not settings.radius_on_first:
        long_scores = (query.flatten(0, 1) @ memory.long.T).view(num, cells, -1)  # (n, T, h * w)
        parts.append(_part_topk(long_scores, g.long_rows(memory.num_slots).expand(num, -1), topk))
    first_slot = 0 if settings.radius_on_first else 1
    if last_slot > first_slot:
        keys_rows = slice(first_slot * cells, last_slot * cells)
        for index, offset in enumerate(offsets):
            start = g.ring_pad + first_tile + offset
            keys = memory.ring[start:start + num, keys_rows]  # (n, U * T, C)
            block = _mask_keys(torch.bmm(query, keys.transpose(1, 2)), pair_ok[:, :, index])  # (n, T, U * T)
            parts.append(_part_topk(block, ring_rows[:, index, first_slot:].flatten(1), topk))
            if copies and settings.radius_on_first:
                first_frame.append(block[:, :, :cells])  # slot 0, the long-memory frame, within the radius
    if copies:
        if settings.radius_on_first:
            scores = torch.cat(first_frame, 2)
        else:
            columns = long_columns.view(num, 1, -1).expand(num, cells, -1)
            scores = long_scores.gather(2, columns).masked_fill(~pair_ok.flatten(2), NEG_INF)
        values, rows = _part_topk(scores, ring_rows[:, :, 0].flatten(1), topk)
        # The copies' scores are these, each ``copies`` times: their top-k is the sorted top-k, each entry
        # repeated (by expanding: torch.repeat_interleave would wait for the device to size its output).
        parts.append(tuple(t.unsqueeze(-1).expand(*t.shape, copies).flatten(-2)[..., :topk] for t in (values, rows)))
    values, rows = (torch.cat(part, -1) for part in zip(*parts))
    best, columns = values.topk(topk, dim=-1)
    return best, rows.gather(-1, columns)


def _propagate_exact(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                     last_slot: int) -> Tensor:
    """Exact fp32 propagation, one row of tiles at a time: (nT, T, C) -> (nT, T, K)."""
    g = memory.geometry
    labels = memory.ring_labels.flatten(0, 1)
    predictions = []
    for tile_row in range(g.tiles_y):
        first = tile_row * g.tiles_x
        values, key_rows = _exact_topk(query_tiles[first:first + g.tiles_x], memory, first, g.tiles_x,
                                       _row_shifts(g, tile_row), last_slot, copies, settings)
        predictions.append(_blend(values, key_rows, labels, settings.temperature))
    return torch.cat(predictions)


def _propagate_batched(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                       last_slot: int) -> Tensor:
    """Exact fp32 propagation of all tiles at once (geometry with ``pad_rows``): (nT, T, C) -> (nT, T, K).

    Queued on the device without waiting for it: the same products, masks and top-k as
    :func:`_propagate_exact`, over every key-tile shift (those leaving the map read zero tiles, masked).
    """
    g = memory.geometry
    values, key_rows = _exact_topk(query_tiles, memory, 0, g.num_tiles, None, last_slot, copies, settings)
    return _blend(values, key_rows, memory.ring_labels.flatten(0, 1), settings.temperature)


def _row_shifts(geometry: TileGeometry, tile_row: int) -> List[int]:
    """The shifts whose key tiles lie in the map for some tile of row ``tile_row`` (the others' keys are all
    outside the image: on maps a few tiles wide, most of a large radius's shifts)."""
    return [s for s, (dy, dx) in enumerate(geometry.shifts)
            if 0 <= tile_row + dy < geometry.tiles_y and abs(dx) < geometry.tiles_x]


def _selection_tolerance(query: Tensor, query_select: Tensor, key_error: Tensor, key_norm: Tensor) -> Tensor:
    """Bound on ``|approximate score - fp32 score|`` per query (..., C) -> (...).

    With ``q~, k~`` the rounded vectors: ``|q.k - q~.k~| <= |q - q~| |k| + |q~| |k - k~|``; the
    low-precision product adds its output rounding ``u |q~| |k~|``; both products accumulate in fp32,
    each within ``C u32 |q| |k|``. A 25 % margin covers the second-order terms.
    """
    unit = _UNIT_ROUNDOFF[query_select.dtype]
    rounded = query_select.float()
    query_norm = rounded.norm(dim=-1)
    query_error = (query - rounded).norm(dim=-1)
    inputs = query_error * (key_norm + key_error) + query_norm * key_error
    output = unit * query_norm * key_norm + 2.0 ** -24  # (the second term: fp16 subnormal spacing)
    accumulation = 2 * query.shape[-1] * _FP32_UNIT_ROUNDOFF * (query_norm + query_error) * (key_norm + key_error)
    return 1.25 * (inputs + output + accumulation)


def _rescore(ring: Tensor, key_rows: Tensor, queries: Tensor) -> Tensor:
    """fp32 scores (p, w) of queries (p, C) against the ring keys at ``key_rows`` (p, w)."""
    per_chunk = max(1, _RESCORE_ROWS // key_rows.shape[1])
    parts = [torch.bmm(ring[key_rows[i:i + per_chunk]], queries[i:i + per_chunk, :, None]).squeeze(2)
             for i in range(0, key_rows.shape[0], per_chunk)]
    return torch.cat(parts)


def _select_topk(approx: Tensor, rows: Tensor, query: Tensor, ring: Tensor, valid: Tensor, tolerance: Tensor,
                 topk: int, num_candidates: int, exact_scores: Callable[[], Tuple[Tensor, Tensor]],
                 stats: Counter) -> Tuple[Tensor, Tensor]:
    """Exact top-k of one query tile from its low-precision scores (the two-stage selection).

    Args:
        approx: (T, N) scores in the selection dtype, -inf out of reach; rows: (N,) their ring rows.
        query: (T, C) fp32 queries; ring: (R, C) fp32 keys; valid: (T,) cells inside the image.
        tolerance: (T,) bound on ``|approx - fp32 score|``.
        exact_scores: returns the tile's fp32 (1, T, N) scores and (1, N) rows (the last resort).
    Returns:
        (T, k) exact top-k scores and their ring rows (zeros for cells outside the image).
    """
    cells, num_keys = approx.shape
    top_values = query.new_zeros(cells, topk)
    top_rows = rows.new_zeros(cells, topk)
    pending = valid.nonzero().squeeze(1)
    stats['queries'] += pending.numel()
    width = min(num_candidates, num_keys)
    for level in ('selected', 'reselected'):
        if pending.numel() == 0:
            break
        part = approx if pending.numel() == cells else approx[pending]
        approx_values, columns = part.topk(width, dim=1)
        key_rows = rows[columns]
        exact = _rescore(ring, key_rows, query[pending]).masked_fill(approx_values == NEG_INF, NEG_INF)
        best_values, best = exact.topk(topk, dim=1)
        # Every key left out scores at most approx_values[:, -1] + tolerance exactly.
        last = approx_values[:, -1]
        accepted = (last.float() + tolerance[pending] < best_values[:, -1]) | (last == NEG_INF)
        if width == num_keys:  # nothing was left out
            accepted[:] = True
        done = pending[accepted]
        top_values[done] = best_values[accepted]
        top_rows[done] = key_rows.gather(1, best)[accepted]
        stats[level] += done.numel()
        pending = pending[~accepted]
        width = min(8 * width, num_keys)
    if pending.numel():
        scores, all_rows = exact_scores()
        values, columns = scores[0, pending].topk(topk, dim=1)
        top_values[pending] = values
        top_rows[pending] = all_rows[0, columns]
        stats['recomputed'] += pending.numel()
    return top_values, top_rows


def _propagate_select(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                      last_slot: int, stats: Counter) -> Tensor:
    """Two-stage propagation (approximate selection, exact fp32 rescoring), one tile at a time."""
    g = memory.geometry
    query_select = query_tiles.to(memory.select_dtype)
    tolerance = _selection_tolerance(query_tiles, query_select, memory.key_error[:last_slot].max(),
                                     memory.key_norm[:last_slot].max())  # (nT, T)
    ring = memory.ring.flatten(0, 1)
    labels = memory.ring_labels.flatten(0, 1)
    predictions = []
    for tile in range(g.num_tiles):
        scores_of = partial(_context_scores, geometry=g, first_tile=tile, num=1,
                            shifts=_row_shifts(g, tile // g.tiles_x), num_slots=memory.num_slots,
                            last_slot=last_slot, copies=copies, radius_on_first=settings.radius_on_first)
        approx, rows = scores_of(query_select[tile:tile + 1], memory.long_select, memory.ring_select)
        exact_scores = partial(scores_of, query_tiles[tile:tile + 1], memory.long, memory.ring)
        values, key_rows = _select_topk(approx[0], rows[0], query_tiles[tile], ring, g.cell_valid[tile],
                                        tolerance[tile], settings.topk, settings.num_candidates, exact_scores,
                                        stats)
        predictions.append(_blend(values, key_rows, labels, settings.temperature))
    return torch.stack(predictions)


def _batch_tiles(settings: PropagationSettings, device: Union[str, torch.device]) -> bool:
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
    settings = settings if settings is not None else PropagationSettings()
    size = tuple(query.shape[-2:])
    _check_maps('query', query, 3, size)
    _check_maps('long_feat', long_feat, 3, size)
    _check_maps('long_labels', long_labels, 3, size)
    _check_maps('short_feats', short_feats, 4, size)
    _check_maps('short_labels', short_labels, 4, size)
    if short_feats.shape[0] != short_labels.shape[0]:
        raise ValueError(f'{short_feats.shape[0]} short-term frames but {short_labels.shape[0]} label maps')
    batched = _batch_tiles(settings, query.device)
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
    query_tiles = geometry.to_tiles(query)
    if select_dtype is None and geometry.pad_rows:
        tiles = _propagate_batched(query_tiles, memory, settings, copies, 1 + num_short)
    elif select_dtype is None:
        tiles = _propagate_exact(query_tiles, memory, settings, copies, 1 + num_short)
    else:
        tiles = _propagate_select(query_tiles, memory, settings, copies, 1 + num_short, Counter())
    return geometry.from_tiles(tiles)


class PropagationStep(torch.nn.Module):
    """The exact fp32 step with fixed shapes and the reference's context layout, for ONNX export.

    ``forward(query (C, h, w), context_feats (m + 1, C, h, w), context_labels (m + 1, K, h, w))``
    returns (K, h, w); context index 0 is the long memory, the other m entries the short-term
    window as real frames (the first frames' copies of frame 0 included).

    Args:
        height, width: feature-map size; context_len: m.
        settings: :class:`PropagationSettings` with ``select_dtype=None``.
        device: where the static index tensors live (that of the inputs when tracing).
    """

    def __init__(self, height: int, width: int, context_len: int, settings: Optional[PropagationSettings] = None,
                 device: Union[str, torch.device] = 'cpu') -> None:
        super().__init__()
        self.settings = settings if settings is not None else PropagationSettings()
        if resolve_select_dtype(self.settings.select_dtype, device) is not None:
            raise ValueError('PropagationStep is the exact step: use select_dtype=None')
        self.context_len = context_len
        self.geometry = TileGeometry(height, width, self.settings.radius, self.settings.tile_size, device)

    def forward(self, query: Tensor, context_feats: Tensor, context_labels: Tensor) -> Tensor:
        return _propagate_frames(query, context_feats[0], context_labels[0], context_feats[1:], context_labels[1:],
                                 self.context_len, 0, self.settings, self.geometry)


class LabelPropagator:
    """Streaming label propagation: one frame of features in, its soft labels out (Cutie-like).

    The first annotated frame becomes the long memory and the short-term window starts as
    ``context_len`` copies of it (``pad_with_first``, the reference's front padding) or as that one
    frame. Every predicted frame is appended to the window (oldest dropped, copies of the first frame
    first). A later frame given with labels (a re-annotated keyframe) replaces the long memory and is
    appended like any frame. Memory is allocated once for ``context_len`` frames; which frames the
    window holds is tracked by :class:`.window.ContextWindow` (shared with the runtime's backends).

    Args:
        topk: keys blended per query, taken jointly over all context keys.
        context_len: m, the short-term window.
        radius: short-term keys at Euclidean distance ``< radius`` feature cells are used.
        temperature: softmax temperature of the top-k affinities.
        radius_on_first: restrict the long memory to the radius too.
        hard_labels: blend one-hot labels (argmax of the carried soft labels) instead of soft ones.
        pad_with_first: start the window with ``context_len`` copies of the first frame.
        select_dtype: None (exact fp32), torch.float16 / torch.bfloat16 (two-stage, still exact) or
            'auto' (see :func:`resolve_select_dtype`).
        num_candidates: candidates per query rescored in fp32 by the two-stage path (default
            ``max(32, 2 * topk)``; 24 is ~10 % faster on random features, fewer re-selections on
            real ones are likelier with more).
        tile_size: (tile_h, tile_w) of the tiled affinity; default :func:`.geometry.default_tile_size`.
        batch_tiles: score all tiles of a frame at once (exact path; the default on CUDA).

    Attributes:
        stats: counts of the two-stage path: queries, selected (first try), reselected (8x the
            candidates), recomputed (exact fallback).
    """

    def __init__(self,
                 topk: int = 15,
                 context_len: int = 20,
                 radius: float = 15.0,
                 temperature: float = 0.1,
                 radius_on_first: bool = False,
                 hard_labels: bool = False,
                 pad_with_first: bool = True,
                 select_dtype: SelectDType = 'auto',
                 num_candidates: Optional[int] = None,
                 tile_size: Optional[Tuple[int, int]] = None,
                 batch_tiles: Optional[bool] = None) -> None:
        if context_len < 1:
            raise ValueError(f'context_len must be >= 1, got {context_len}')
        self.settings = PropagationSettings(topk, radius, temperature, radius_on_first, hard_labels, select_dtype,
                                            num_candidates, tuple(tile_size) if tile_size is not None else None,
                                            batch_tiles)
        self.context_len = context_len
        self.pad_with_first = pad_with_first
        self.stats = Counter()
        self._window = ContextWindow(context_len, pad_with_first)
        self.reset()

    def reset(self) -> None:
        """Forget the video (the next step must be annotated)."""
        self._geometry: Optional[TileGeometry] = None
        self._memory: Optional[ContextMemory] = None
        self._window.reset()

    @torch.no_grad()
    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Propagate to the next frame.

        Args:
            feat: (C, h, w) L2-normalised features of the frame (any device; used as float32).
            labels: (K, h, w) soft labels when the frame is annotated; the first call must have them.
        Returns:
            (K, h, w) soft labels: the given ones for an annotated frame, else the prediction.
        """
        if not isinstance(feat, Tensor) or feat.dim() != 3 or not feat.is_floating_point():
            raise ValueError(f'feat must be a floating (C, h, w) tensor, got '
                             f'{tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__}')
        feat = feat.float()
        if self._memory is None:
            if labels is None:
                raise ValueError('the first frame of a video must come with labels')
            self._start(feat, labels)
            return labels
        g = self._geometry
        if tuple(feat.shape) != (self._memory.ring.shape[-1], g.height, g.width):
            raise ValueError(f'feat of shape {tuple(feat.shape)} differs from the first frame\'s '
                             f'({self._memory.ring.shape[-1]}, {g.height}, {g.width})')
        feat_tiles = g.to_tiles(feat.to(g.device))
        if labels is not None:
            self._reannotate(feat_tiles, self._label_tiles(labels))
            return labels
        last_slot = 1 + len(self._window.slots)  # the distinct frames are slots 1 .. last_slot - 1
        copies = self._window.copies
        if self._memory.select_dtype is None and g.pad_rows:
            tiles = _propagate_batched(feat_tiles, self._memory, self.settings, copies, last_slot)
        elif self._memory.select_dtype is None:
            tiles = _propagate_exact(feat_tiles, self._memory, self.settings, copies, last_slot)
        else:
            tiles = _propagate_select(feat_tiles, self._memory, self.settings, copies, last_slot, self.stats)
        self._append(feat_tiles, torch.where(g.cell_valid.unsqueeze(-1), tiles, 0.0))
        return g.from_tiles(tiles)

    @torch.no_grad()
    def append(self, feat: Tensor, labels: Tensor) -> None:
        """Append a frame whose soft labels are known (e.g. a prediction restored by a resumed run) to the
        short-term window, as :meth:`step` appends a prediction; the long memory is unchanged.

        Args:
            feat: (C, h, w) features of the frame; labels: (K, h, w) its soft labels.
        """
        if self._memory is None:
            raise ValueError('append() needs a first frame: call step(feat, labels) first')
        g = self._geometry
        if not isinstance(feat, Tensor) or tuple(feat.shape) != (self._memory.ring.shape[-1], g.height, g.width):
            raise ValueError(f'feat must be a ({self._memory.ring.shape[-1]}, {g.height}, {g.width}) tensor, got '
                             f'{tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__}')
        self._append(g.to_tiles(feat.to(g.device, torch.float32)), self._label_tiles(labels))

    def memory_bytes(self) -> int:
        """Bytes of the tensors the propagator holds between steps."""
        if self._memory is None:
            return 0
        return self._memory.nbytes() + self._geometry.nbytes()

    def _label_tiles(self, labels: Tensor) -> Tensor:
        g = self._geometry
        expected = (self._memory.ring_labels.shape[-1], g.height, g.width)
        if not isinstance(labels, Tensor) or tuple(labels.shape) != expected:
            raise ValueError(f'labels must be a {expected} tensor (K classes of the first frame), got '
                             f'{tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__}')
        tiles = g.to_tiles(labels.to(g.device, torch.float32))
        return _hard(tiles) if self.settings.hard_labels else tiles

    def _start(self, feat: Tensor, labels: Tensor) -> None:
        if not isinstance(labels, Tensor) or labels.dim() != 3 or tuple(labels.shape[1:]) != tuple(feat.shape[1:]):
            raise ValueError(f'labels must be a (K, {feat.shape[1]}, {feat.shape[2]}) tensor, got '
                             f'{tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__}')
        s = self.settings
        self._geometry = TileGeometry(feat.shape[1], feat.shape[2], s.radius, s.tile_size, feat.device,
                                      _batch_tiles(s, feat.device))
        select_dtype = resolve_select_dtype(s.select_dtype, feat.device)
        self._memory = ContextMemory.allocate(self._geometry, 1 + self.context_len, feat.shape[0], labels.shape[0],
                                              select_dtype)
        self._memory.write(0, self._geometry.to_tiles(feat), self._label_tiles(labels))
        self._window.start()

    def _append(self, feat_tiles: Tensor, label_tiles: Tensor) -> None:
        """Append a frame to the short-term window (the used slots stay 1 .. len(window))."""
        slot = self._window.append()
        self._memory.write(slot, feat_tiles, _hard(label_tiles) if self.settings.hard_labels else label_tiles)

    def _reannotate(self, feat_tiles: Tensor, label_tiles: Tensor) -> None:
        """A keyframe: replace the long memory; its copies still in the window become real entries."""
        for slot in self._window.materialise_copies():
            self._memory.copy_slot(0, slot)
        self._memory.write(0, feat_tiles, label_tiles)
        self._append(feat_tiles, label_tiles)
