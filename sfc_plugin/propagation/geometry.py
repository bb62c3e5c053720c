"""Tile layout of the restricted affinity: which context keys each query cell may use.

Feature maps are cut into tiles of ``tile_h x tile_w`` cells (zero-padded at the bottom and right to
whole tiles), tiles in row-major order, cells row-major inside a tile. A key within the radius of a
query cell lies in the block of ``(2 * ceil(reach / tile_h) + 1) x (2 * ceil(reach / tile_w) + 1)``
tiles centred on the query's tile; each of these tiles is one *shift* ``(dy, dx)`` in tile units.
Scoring a query tile against the key tile at every shift gives all keys inside the radius plus a
few outside it, which a static mask removes: no full affinity is ever formed.

The context frames live in a flat *ring* of tiles, ``(ring_pad + num_tiles + ring_pad, slots * T, C)``
(``T = tile_h * tile_w``): the key tile at shift ``(dy, dx)`` of query tile ``t`` is ring tile
``ring_pad + t + dy * tiles_x + dx``, so the key tiles of a whole row of query tiles at one shift are
one contiguous slice. Near the left and right border that slice wraps into the neighbouring tile row;
the mask marks those keys as outside the image. Shifts leaving the map vertically are skipped, or, with
``pad_rows``, read from whole rows of zero tiles above and below the map, so that every shift of every
tile is one slice (the batched path scores all tiles of a frame at once).
"""
import math
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor


def within_radius(offset_y: Tensor, offset_x: Tensor, radius: float) -> Tensor:
    """The radius rule of the short-term window (docs/method.md section 3): a key at offset ``(offset_y,
    offset_x)`` cells from the query is used when its Euclidean distance is strictly below ``radius``."""
    return offset_y ** 2 + offset_x ** 2 < radius ** 2


def disk_reach(radius: float) -> int:
    """Largest integer offset ``d`` with ``d * d < radius ** 2``: the disk lies in [-reach, reach]^2."""
    if not radius > 0:
        raise ValueError(f'radius must be positive, got {radius}')
    return math.ceil(radius) - 1


def default_tile_size(reach: int, height: Optional[int] = None, width: Optional[int] = None) -> Tuple[int, int]:
    """Tile of ``ceil(reach / 2) x 2 * ceil(reach / 2)`` cells, at least 4 x 8; the whole map when it has no
    more cells than the block of keys such a tile scores per frame.

    Tile sides that divide the reach make the shifted blocks hug the disk: at radius 15 (reach 14)
    the 7 x 14 tiles need 5 x 3 blocks, i.e. 35 x 42 keys per query for the 709 inside the radius,
    the least waste among the tiles of 64 to 256 cells measured on an AVX2 CPU; 98 query
    rows also keep the products efficient (AMX works on 16-row tiles). On a map smaller than that block
    (the demo clip's 18 x 22 features) the blocks mostly score padding, and one tile scores each key once
    (4.4x less time per frame there).
    """
    tile_h = max(4, math.ceil(reach / 2))
    tile_w = 2 * tile_h
    block = (2 * math.ceil(reach / tile_h) + 1) * tile_h * (2 * math.ceil(reach / tile_w) + 1) * tile_w
    if height is not None and width is not None and height * width <= block:
        return height, width
    return tile_h, tile_w


class TileGeometry:
    """Static index tensors of the tiled affinity for one map size, radius and tile size.

    Args:
        height, width: feature-map size in cells.
        radius: keys at Euclidean distance ``< radius`` (in cells) are within reach.
        tile_size: ``(tile_h, tile_w)``; default :func:`default_tile_size` (of the reach and the map).
        device: where the index tensors live (that of the features).
        pad_rows: pad the ring with whole tile rows above and below (see the module docstring).

    Attributes (``nT = num_tiles``, ``T = tile_cells``, ``S = len(shifts)``):
        pair_ok: (nT, T, S, T) bool, key cell ``p'`` of the tile at shift ``s`` is inside the image
            and strictly inside the radius of query cell ``p`` of tile ``t``.
        cell_valid: (nT, T) bool, the cell lies inside the image (not padding).
        long_columns: (nT, S, T) int64, raster index (``y * width + x``) of that key in a frame,
            clamped into the image where the key is outside it (only read where ``pair_ok``).
        raster_cells: (h * w,) int64, tile-order index (``tile * T + cell``) of each raster cell.
    """

    def __init__(self,
                 height: int,
                 width: int,
                 radius: float,
                 tile_size: Optional[Tuple[int, int]] = None,
                 device: Union[str, torch.device, None] = None,
                 pad_rows: bool = False) -> None:
        if height < 1 or width < 1:
            raise ValueError(f'feature map size must be positive, got {height} x {width}')
        self.height, self.width, self.radius = int(height), int(width), float(radius)
        self.reach = disk_reach(radius)
        tile_h, tile_w = tile_size if tile_size is not None else default_tile_size(self.reach, height, width)
        if tile_h < 1 or tile_w < 1:
            raise ValueError(f'tile_size must be positive, got {tile_size}')
        self.tile_h, self.tile_w = int(tile_h), int(tile_w)
        self.tiles_y = math.ceil(height / tile_h)
        self.tiles_x = math.ceil(width / tile_w)
        self.num_tiles = self.tiles_y * self.tiles_x
        self.tile_cells = tile_h * tile_w
        blocks_y = math.ceil(self.reach / tile_h)
        blocks_x = math.ceil(self.reach / tile_w)
        self.pad_rows = pad_rows
        self.ring_pad = blocks_y * self.tiles_x + blocks_x if pad_rows else blocks_x
        self.ring_tiles = self.num_tiles + 2 * self.ring_pad

        cells = torch.arange(self.tile_cells)
        cell_y, cell_x = cells // tile_w, cells % tile_w
        candidates = torch.tensor([(dy, dx) for dy in range(-blocks_y, blocks_y + 1)
                                   for dx in range(-blocks_x, blocks_x + 1)])
        # (T query cells, S shifts, T key cells): offset from query cell to key cell.
        offset_y = (candidates[None, :, 0, None] * tile_h + cell_y[None, None, :]) - cell_y[:, None, None]
        offset_x = (candidates[None, :, 1, None] * tile_w + cell_x[None, None, :]) - cell_x[:, None, None]
        in_disk = within_radius(offset_y, offset_x, self.radius)
        used = in_disk.flatten(2).any(2).any(0)  # shifts holding a key within reach of some cell
        in_disk = in_disk[:, used]
        shifts = candidates[used]
        self.shifts: List[Tuple[int, int]] = [(int(dy), int(dx)) for dy, dx in shifts]
        self.shift_offsets: List[int] = [dy * self.tiles_x + dx for dy, dx in self.shifts]
        shift_offsets = shifts[:, 0] * self.tiles_x + shifts[:, 1]

        tiles = torch.arange(self.num_tiles)
        key_tile_y = (tiles // self.tiles_x)[:, None] + shifts[None, :, 0]  # (nT, S)
        key_tile_x = (tiles % self.tiles_x)[:, None] + shifts[None, :, 1]
        key_y = key_tile_y[..., None] * tile_h + cell_y  # (nT, S, T)
        key_x = key_tile_x[..., None] * tile_w + cell_x
        key_inside = ((key_tile_y >= 0) & (key_tile_y < self.tiles_y)
                      & (key_tile_x >= 0) & (key_tile_x < self.tiles_x))[..., None]
        key_inside = key_inside & (key_y < height) & (key_x < width)
        self.pair_ok = (in_disk[None] & key_inside[:, None]).to(device)
        self.long_columns = (key_y.clamp(0, height - 1) * width + key_x.clamp(0, width - 1)).to(device)
        cell_row = (tiles // self.tiles_x)[:, None] * tile_h + cell_y  # (nT, T)
        cell_col = (tiles % self.tiles_x)[:, None] * tile_w + cell_x
        self.cell_valid = ((cell_row < height) & (cell_col < width)).to(device)
        raster_y, raster_x = torch.arange(height * width) // width, torch.arange(height * width) % width
        self.raster_cells = (((raster_y // tile_h) * self.tiles_x + raster_x // tile_w) * self.tile_cells
                             + (raster_y % tile_h) * tile_w + raster_x % tile_w).to(device)
        self.shift_tile_offsets = shift_offsets.to(device)  # (S,) the shifts in flat tile units
        self.device = self.pair_ok.device

    def to_tiles(self, maps: Tensor) -> Tensor:
        """(..., D, h, w) maps of this geometry's size -> (..., nT, T, D) tiles, zero-padded."""
        padding = (0, self.tiles_x * self.tile_w - self.width, 0, self.tiles_y * self.tile_h - self.height)
        padded = F.pad(maps, padding)
        tiles = padded.unflatten(-1, (self.tiles_x, self.tile_w)).unflatten(-3, (self.tiles_y, self.tile_h))
        d = tiles.dim() - 5  # tiles: (..., D, tiles_y, tile_h, tiles_x, tile_w), D at dim d
        tiles = tiles.permute(*range(d), d + 1, d + 3, d + 2, d + 4, d)  # (..., tiles_y, tiles_x, tile_h, tile_w, D)
        return tiles.flatten(d, d + 1).flatten(d + 1, d + 2)

    def from_tiles(self, tiles: Tensor) -> Tensor:
        """(nT, T, D) tiles -> (D, h, w) map (padding cropped)."""
        maps = tiles.unflatten(0, (self.tiles_y, self.tiles_x)).unflatten(2, (self.tile_h, self.tile_w))
        maps = maps.permute(4, 0, 2, 1, 3).flatten(1, 2).flatten(2, 3)  # (D, tiles_y * tile_h, tiles_x * tile_w)
        return maps[:, :self.height, :self.width]

    def long_rows(self, num_slots: int) -> Tensor:
        """(h * w,) ring row of slot 0 (the long memory) for each raster cell."""
        tiles, cells = self.raster_cells // self.tile_cells, self.raster_cells % self.tile_cells
        return (self.ring_pad + tiles) * num_slots * self.tile_cells + cells

    def short_rows(self, first_tile: int, num: int, num_slots: int, first_slot: int, last_slot: int) -> Tensor:
        """(num, S, last_slot - first_slot, T) ring rows of the keys at each shift of query tiles
        ``first_tile .. first_tile + num - 1`` (clamped into the ring for shifts leaving the map)."""
        tiles = torch.arange(first_tile, first_tile + num, device=self.device)[:, None]
        ring_tiles = self.ring_pad + tiles + self.shift_tile_offsets
        ring_tiles = ring_tiles.clamp(0, self.ring_tiles - 1)  # (num, S)
        slots = torch.arange(first_slot, last_slot, device=self.device)
        cells = torch.arange(self.tile_cells, device=self.device)
        return ((ring_tiles[..., None] * num_slots + slots)[..., None] * self.tile_cells + cells)

    def nbytes(self) -> int:
        tensors = (self.pair_ok, self.long_columns, self.cell_valid, self.raster_cells, self.shift_tile_offsets)
        return sum(t.numel() * t.element_size() for t in tensors)
