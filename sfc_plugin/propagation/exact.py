"""The exact fp32 top-k of the tiled core: one row of tiles at a time, or all tiles at once (CUDA).

The context is scored in parts (the long memory, each key-tile shift, the first frame's copies), each cut to
its own top-k before a last top-k over those candidates. On CUDA all tiles of a frame are scored at once: one
product per key-tile shift over every query tile, no Python loop over tiles and no host synchronisation; its
largest temporary is the long memory's scores (180 MB at DAVIS size). The step has static control flow, so it
traces for ONNX.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .memory import ContextMemory
from .scoring import NEG_INF, blend, mask_keys, part_topk, row_shifts
from .settings import PropagationSettings


def exact_topk(query: Tensor, memory: ContextMemory, first_tile: int, num: int, shifts: Optional[List[int]],
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
        parts.append(part_topk(long_scores, g.long_rows(memory.num_slots).expand(num, -1), topk))
    first_slot = 0 if settings.radius_on_first else 1
    if last_slot > first_slot:
        keys_rows = slice(first_slot * cells, last_slot * cells)
        for index, offset in enumerate(offsets):
            start = g.ring_pad + first_tile + offset
            keys = memory.ring[start:start + num, keys_rows]  # (n, U * T, C)
            block = mask_keys(torch.bmm(query, keys.transpose(1, 2)), pair_ok[:, :, index])  # (n, T, U * T)
            parts.append(part_topk(block, ring_rows[:, index, first_slot:].flatten(1), topk))
            if copies and settings.radius_on_first:
                first_frame.append(block[:, :, :cells])  # slot 0, the long-memory frame, within the radius
    if copies:
        if settings.radius_on_first:
            scores = torch.cat(first_frame, 2)
        else:
            columns = long_columns.view(num, 1, -1).expand(num, cells, -1)
            scores = long_scores.gather(2, columns).masked_fill(~pair_ok.flatten(2), NEG_INF)
        values, rows = part_topk(scores, ring_rows[:, :, 0].flatten(1), topk)
        # The copies' scores are these, each ``copies`` times: their top-k is the sorted top-k, each entry
        # repeated (by expanding: torch.repeat_interleave would wait for the device to size its output).
        parts.append(tuple(t.unsqueeze(-1).expand(*t.shape, copies).flatten(-2)[..., :topk] for t in (values, rows)))
    values, rows = (torch.cat(part, -1) for part in zip(*parts))
    best, columns = values.topk(topk, dim=-1)
    return best, rows.gather(-1, columns)


def propagate_exact(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                     last_slot: int) -> Tensor:
    """Exact fp32 propagation, one row of tiles at a time: (nT, T, C) -> (nT, T, K)."""
    g = memory.geometry
    labels = memory.ring_labels.flatten(0, 1)
    predictions = []
    for tile_row in range(g.tiles_y):
        first = tile_row * g.tiles_x
        values, key_rows = exact_topk(query_tiles[first:first + g.tiles_x], memory, first, g.tiles_x,
                                       row_shifts(g, tile_row), last_slot, copies, settings)
        predictions.append(blend(values, key_rows, labels, settings.temperature))
    return torch.cat(predictions)


def propagate_batched(query_tiles: Tensor, memory: ContextMemory, settings: PropagationSettings, copies: int,
                       last_slot: int) -> Tensor:
    """Exact fp32 propagation of all tiles at once (geometry with ``pad_rows``): (nT, T, C) -> (nT, T, K).

    Queued on the device without waiting for it: the same products, masks and top-k as
    :func:`_propagate_exact`, over every key-tile shift (those leaving the map read zero tiles, masked).
    """
    g = memory.geometry
    values, key_rows = exact_topk(query_tiles, memory, 0, g.num_tiles, None, last_slot, copies, settings)
    return blend(values, key_rows, memory.ring_labels.flatten(0, 1), settings.temperature)
