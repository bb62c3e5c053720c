"""Pieces shared by the exact and the two-stage top-k: masking, per-part top-k and the label blend."""
from typing import List, Tuple

import torch
from torch import Tensor

from .geometry import TileGeometry

NEG_INF = float('-inf')


def blend(values: Tensor, key_rows: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """softmax(values / temperature) weighted sum of the keys' labels: (..., k) -> (..., K)."""
    weights = torch.softmax(values / temperature, dim=-1)
    return (weights.unsqueeze(-1) * labels[key_rows]).sum(-2)


def part_topk(scores: Tensor, rows: Tensor, topk: int) -> Tuple[Tensor, Tensor]:
    """The largest ``min(topk, N)`` of (n, T, N) scores, sorted, and the ring rows (n, T, k') behind them;
    ``rows``: (n, N), the ring row of each column."""
    values, columns = scores.topk(min(topk, scores.shape[-1]), dim=-1)
    return values, rows.gather(1, columns.flatten(1)).view_as(columns)


def mask_keys(block: Tensor, pair_ok: Tensor) -> Tensor:
    """-inf in (n, T, U * T) scores where (n, T, T) ``pair_ok`` is False for every slot; in place, except when
    traced (the ONNX exporter loses in-place writes through views)."""
    n, cells = pair_ok.shape[:2]
    slots = block.view(n, cells, -1, cells)
    outside = ~pair_ok.unsqueeze(2)
    if torch.jit.is_tracing():
        return slots.masked_fill(outside, NEG_INF).flatten(2)
    slots.masked_fill_(outside, NEG_INF)
    return block


def row_shifts(geometry: TileGeometry, tile_row: int) -> List[int]:
    """The shifts whose key tiles lie in the map for some tile of row ``tile_row`` (the others' keys are all
    outside the image: on maps a few tiles wide, most of a large radius's shifts)."""
    return [s for s, (dy, dx) in enumerate(geometry.shifts)
            if 0 <= tile_row + dy < geometry.tiles_y and abs(dx) < geometry.tiles_x]
