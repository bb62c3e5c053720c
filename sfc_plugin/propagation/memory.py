"""The context memory of the tiled core: the long memory and the short-term frames in the ring layout of
:mod:`.geometry`, plus their low-precision copies for the two-stage selection."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import TileGeometry


def one_hot_argmax(labels: Tensor) -> Tensor:
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
    def allocate(cls, geometry: TileGeometry, num_slots: int, channels: int, num_labels: int,
                 select_dtype: Optional[torch.dtype]) -> 'ContextMemory':
        """Zero memory for ``num_slots`` slots, filled later with :meth:`write`."""
        rows = num_slots * geometry.tile_cells
        device = geometry.device
        return cls(geometry,
                   torch.zeros(geometry.ring_tiles, rows, channels, device=device),
                   torch.zeros(geometry.ring_tiles, rows, num_labels, device=device),
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
            label_tiles = one_hot_argmax(label_tiles)
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
