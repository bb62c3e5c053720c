"""The two-stage exact top-k: low-precision products pick candidates, fp32 rescoring decides.

The affinity products in float16 / bfloat16 (AMX on recent Xeons runs them 4-5x faster) pick
``num_candidates`` per query, which are rescored in fp32. A query is accepted when the last picked
approximate score plus a rigorous bound on the approximation error is below the k-th exact score, so no
unpicked key can belong to the exact top-k; the others are retried with 8x the candidates, then computed
exactly. The error bound assumes the low-precision products accumulate in fp32, as oneDNN's (AMX) and
torch's CPU kernels do.
"""
from collections import Counter
from functools import partial
from typing import Callable, List, Tuple

import torch
from torch import Tensor

from .geometry import TileGeometry
from .memory import ContextMemory
from .scoring import NEG_INF, blend, row_shifts
from .settings import UNIT_ROUNDOFF, PropagationSettings

_FP32_UNIT_ROUNDOFF = 2.0 ** -24
# Rows of fp32 keys gathered at once when rescoring candidates (bounds the temporary to ~40 MB).
_RESCORE_ROWS = 8192


def context_scores(query: Tensor, long_keys: Tensor, ring: Tensor, geometry: TileGeometry, first_tile: int,
                    num: int, shifts: List[int], num_slots: int, last_slot: int, copies: int,
                    radius_on_first: bool) -> Tuple[Tensor, Tensor]:
    """Scores of query tiles against every context key they may use; -inf where out of reach (the
    two-stage path's full score lists; the exact paths use :func:`.exact.exact_topk`).

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


def _selection_tolerance(query: Tensor, query_select: Tensor, key_error: Tensor, key_norm: Tensor) -> Tensor:
    """Bound on ``|approximate score - fp32 score|`` per query (..., C) -> (...).

    With ``q~, k~`` the rounded vectors: ``|q.k - q~.k~| <= |q - q~| |k| + |q~| |k - k~|``; the
    low-precision product adds its output rounding ``u |q~| |k~|``; both products accumulate in fp32,
    each within ``C u32 |q| |k|``. A 25 % margin covers the second-order terms.
    """
    unit = UNIT_ROUNDOFF[query_select.dtype]
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


def propagate_select(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
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
        scores_of = partial(context_scores, geometry=g, first_tile=tile, num=1,
                            shifts=row_shifts(g, tile // g.tiles_x), num_slots=memory.num_slots,
                            last_slot=last_slot, copies=copies, radius_on_first=settings.radius_on_first)
        approx, rows = scores_of(query_select[tile:tile + 1], memory.long_select, memory.ring_select)
        exact_scores = partial(scores_of, query_tiles[tile:tile + 1], memory.long, memory.ring)
        values, key_rows = _select_topk(approx[0], rows[0], query_tiles[tile], ring, g.cell_valid[tile],
                                        tolerance[tile], settings.topk, settings.candidates, exact_scores,
                                        stats)
        predictions.append(blend(values, key_rows, labels, settings.temperature))
    return torch.stack(predictions)
