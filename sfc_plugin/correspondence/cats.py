"""CATs-lite: a trainable matcher over hyperpixel correlations (after Cho et al., CATs, NeurIPS 2021).

The network, as CATs builds it and SemiMatch trains it, at a size a CPU can train:

1. hyperpixels: the outputs of a few backbone layers for 256 x 256 images, each resized bilinearly
   to a ``grid`` x ``grid`` map (16 x 16: N = 256 cells) and L2-normalised per cell
   (:func:`hyperpixel_maps`);
2. one correlation per layer between the query and the reference image, (B, L, N_q, N_r), cosine
   similarity, then CATs' mutual-nearest-neighbour filter ``C * (C / max_q C) * (C / max_r C)``
   (:func:`mutual_nn_filter`);
3. a transformer aggregator (:class:`CorrelationAggregator`): each query cell is a token made of its
   correlation row (N_r values) and a 128-d projection of its own features, plus a learned position
   embedding; a block attends over the cells of each layer, then over the layers of each cell; a
   linear head maps the tokens back to correlation rows, added to the input (residual). It runs
   twice, on the correlation and on its transpose (reference cells as tokens), with shared weights,
   and the two results are averaged, then the layers: the refined correlation R (B, N_q, N_r);
4. the flow: for each query cell, the soft-argmax of ``softmax_r(R / temperature)`` over the
   reference cells' positions (:func:`soft_argmax`; optionally SFNet's kernel soft-argmax), as a
   displacement in cells.

Choices of ours (CATs differs): the head starts at zero, so the untrained network returns the
filtered correlation averaged over layers (a sensible matcher before any training, and a stable start
for a short CPU run); the backbone is frozen (the aggregator learns).

Geometry: cell (i, j) of a ``grid`` map over an S x S image stands for the pixel
((j + 0.5) * S / grid - 0.5, (i + 0.5) * S / grid - 0.5); positions in cells are (x, y) = (j, i).
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfc_plugin.models.selfsup.cycle import layer_outputs

__all__ = ['hyperpixel_maps', 'layer_correlations', 'mutual_nn_filter', 'CorrelationBlock',
           'CorrelationAggregator', 'cell_positions', 'soft_argmax', 'keypoint_flow_labels', 'endpoint_error']


def hyperpixel_maps(backbone: nn.Module, images: Tensor, layers: Sequence[str], grid: int) -> List[Tensor]:
    """Per-layer L2-normalised features of ``images`` (B, 3, S, S) at ``grid`` x ``grid``: a list of
    (B, C_l, grid, grid), one per name in ``layers`` (``backbone.named_modules()`` keys)."""
    maps = []
    for output in layer_outputs(backbone, images, layers):
        output = output.float()
        if output.shape[-2:] != (grid, grid):
            output = F.interpolate(output, size=(grid, grid), mode='bilinear', align_corners=False)
        maps.append(F.normalize(output, dim=1))
    return maps


def layer_correlations(query_maps: Sequence[Tensor], reference_maps: Sequence[Tensor]) -> Tensor:
    """Cosine similarity of every query cell with every reference cell, per layer: (B, L, N_q, N_r)."""
    return torch.stack([torch.einsum('bcq,bcr->bqr', query.flatten(2), reference.flatten(2))
                        for query, reference in zip(query_maps, reference_maps)], dim=1)


def mutual_nn_filter(correlation: Tensor, eps: float = 1e-5) -> Tensor:
    """CATs' soft mutual-nearest-neighbour filter of (..., N_q, N_r) correlations: each entry is scaled
    by its ratio to the best of its row and of its column."""
    row_best = correlation.max(dim=-1, keepdim=True).values
    column_best = correlation.max(dim=-2, keepdim=True).values
    return correlation * (correlation / (row_best + eps)) * (correlation / (column_best + eps))


class _Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: float) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class CorrelationBlock(nn.Module):
    """Pre-norm transformer block over (B, L, N, D) tokens: self-attention over the N cells of each
    layer, then over the L layers of each cell, each followed by an MLP (CATs' multi-level block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.cell_norm = nn.LayerNorm(dim)
        self.cell_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cell_mlp_norm = nn.LayerNorm(dim)
        self.cell_mlp = _Mlp(dim, mlp_ratio)
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.layer_mlp_norm = nn.LayerNorm(dim)
        self.layer_mlp = _Mlp(dim, mlp_ratio)

    def forward(self, tokens: Tensor) -> Tensor:
        batch, layers, cells, dim = tokens.shape
        x = tokens.reshape(batch * layers, cells, dim)
        normed = self.cell_norm(x)
        x = x + self.cell_attention(normed, normed, normed, need_weights=False)[0]
        x = x + self.cell_mlp(self.cell_mlp_norm(x))
        x = x.reshape(batch, layers, cells, dim).transpose(1, 2).reshape(batch * cells, layers, dim)
        normed = self.layer_norm(x)
        x = x + self.layer_attention(normed, normed, normed, need_weights=False)[0]
        x = x + self.layer_mlp(self.layer_mlp_norm(x))
        return x.reshape(batch, cells, layers, dim).transpose(1, 2)


class CorrelationAggregator(nn.Module):
    """CATs' transformer aggregator: (B, L, N_q, N_r) correlations + per-layer features -> (B, N_q, N_r).

    Args:
        feature_channels: channels C_l of each layer's features (their projections join the tokens).
        grid: cells per side of every map (N = grid ** 2).
        projection_dim: size of a cell's feature projection (CATs: 128); token size N + projection_dim.
        depth, heads, mlp_ratio: transformer blocks (CATs: 1, 6, 4).
        position_embedding: learn a position embedding per layer and cell (CATs); False leaves the tokens
            without one (the aggregator then cannot memorise where on the grid things usually are).
    """

    def __init__(self, feature_channels: Sequence[int], grid: int = 16, projection_dim: int = 128, depth: int = 1,
                 heads: int = 6, mlp_ratio: float = 4.0, position_embedding: bool = True) -> None:
        super().__init__()
        cells = grid * grid
        dim = cells + projection_dim
        if dim % heads:
            raise ValueError(f'CorrelationAggregator: the token size grid**2 + projection_dim = {dim} must be a '
                             f'multiple of heads = {heads}')
        self.grid = grid
        self.projections = nn.ModuleList(nn.Linear(channels, projection_dim) for channels in feature_channels)
        self.position = None
        if position_embedding:
            self.position = nn.Parameter(torch.zeros(1, len(feature_channels), cells, dim))
            nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.Sequential(*[CorrelationBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.head = nn.Linear(dim, cells)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _refine(self, correlation: Tensor, token_maps: Sequence[Tensor]) -> Tensor:
        """One direction: the rows of ``correlation`` (B, L, N_t, N_o) are tokens, with the features of
        their cells ``token_maps`` (per layer (B, C_l, grid, grid))."""
        embedded = torch.stack([projection(features.flatten(2).transpose(1, 2))
                                for projection, features in zip(self.projections, token_maps)], dim=1)
        tokens = torch.cat([correlation, embedded], dim=-1)  # (B, L, N_t, N_o + P)
        if self.position is not None:
            tokens = tokens + self.position
        return correlation + self.head(self.blocks(tokens))

    def forward(self, correlation: Tensor, query_maps: Sequence[Tensor], reference_maps: Sequence[Tensor]) -> Tensor:
        along_query = self._refine(correlation, query_maps)
        along_reference = self._refine(correlation.transpose(2, 3), reference_maps).transpose(2, 3)
        return ((along_query + along_reference) / 2).mean(dim=1)


def cell_positions(grid: int, device=None) -> Tensor:
    """(grid ** 2, 2) x, y of each cell in cell units, row-major."""
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32, device=device),
                            torch.arange(grid, dtype=torch.float32, device=device), indexing='ij')
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def soft_argmax(correlation: Tensor, grid: int, temperature: float, kernel_sigma: Optional[float] = None) -> Tensor:
    """Expected reference position of every query cell, (B, N_q, N_r) -> (B, N_q, 2) x, y in cells.

    With ``kernel_sigma`` (cells), SFNet's kernel soft-argmax: each row is first multiplied by a Gaussian
    centred on its argmax, as the feature matcher ``kernel_soft_argmax`` does."""
    positions = cell_positions(grid, correlation.device)
    if kernel_sigma is not None:
        peaks = positions[correlation.argmax(dim=-1)]  # (B, N_q, 2)
        squared = ((positions[None, None] - peaks[..., None, :]) ** 2).sum(-1)  # (B, N_q, N_r)
        correlation = correlation * torch.exp(-squared / (2 * kernel_sigma ** 2))
    probability = torch.softmax(correlation / temperature, dim=-1)
    return probability @ positions


def keypoint_flow_labels(query_kps: Tensor, reference_kps: Tensor, image_size: int, grid: int,
                         box_side: float = 35.0) -> tuple:
    """CATs' sparse flow labels: every query cell whose ``box_side``-pixel box (centred on the cell's
    pixel) covers query keypoints gets the mean of their displacements ``reference - query``, in cells.

    ``query_kps``, ``reference_kps``: (B, K, 2) pixels of the S x S images (NaN rows: absent).
    Returns (labels (B, N_q, 2), mask (B, N_q) bool).
    """
    stride = image_size / grid
    centres = (cell_positions(grid, query_kps.device) + 0.5) * stride - 0.5  # (N, 2) pixels
    present = torch.isfinite(query_kps).all(-1) & torch.isfinite(reference_kps).all(-1)  # (B, K)
    offset = (query_kps[:, None] - centres[None, :, None]).abs()  # (B, N, K, 2)
    covers = (offset <= box_side / 2).all(-1) & present[:, None]  # (B, N, K)
    displacement = torch.nan_to_num(reference_kps - query_kps) / stride  # (B, K, 2) cells
    weight = covers.float()
    count = weight.sum(-1)  # (B, N)
    labels = (weight @ displacement) / count.clamp(min=1)[..., None]
    return labels, count > 0


def endpoint_error(correlation: Tensor, labels: Tensor, mask: Tensor, grid: int, temperature: float,
                   kernel_sigma: Optional[float] = None) -> Tensor:
    """Mean end-point error (cells) of the soft-argmax flow of (B, N_q, N_r) against ``labels`` at the
    cells of ``mask``; 0 (with a graph) when no cell has a label."""
    flow = soft_argmax(correlation, grid, temperature, kernel_sigma) - cell_positions(grid, correlation.device)
    error = (flow - labels).norm(dim=-1)  # (B, N_q)
    if not mask.any():
        return error.sum() * 0
    return error[mask].mean()
