"""Point matching between two images over dense features: the one module evaluation and ``sfc-match`` use.

:class:`FeatureExtractor` turns an image into a :class:`FeatureMap` (L2-normalised features plus
the pixel each cell stands for) with any backbone that maps RGB in [0, 1] to a feature map: at the
image's size or resized, at the backbone's stride or resampled to another, from its output or from
several of its layers ("hyperpixels", as HPF and SCOT build them). :class:`PairMatcher` transfers
source points to the target image with one of:

- ``nn``: nearest neighbour (highest cosine) over the target cells;
- ``mutual_nn``: the nearest neighbour, kept only when the target cell's own nearest source cell is
  the point's cell (within one cell); other points get no prediction (NaN);
- ``soft_argmax``: kernel soft-argmax (SFNet, used by CATs): the correlation is multiplied by a
  Gaussian centred on its argmax, turned into a distribution by a softmax with temperature and
  the expected position is the prediction;
- ``ot_rhm``: SCOT: optimal transport (Sinkhorn) of the exponentiated cosine similarity between
  all cells, then regularized Hough matching (votes for the translation between cells, smoothed,
  re-weighting the transport plan); points move with the matches of the cells whose receptive
  field covers them.

Geometry: a cell (i, j) stands for the image pixel ((j + 0.5) * cw - 0.5, (i + 0.5) * ch - 0.5), where
(cw, ch) is the cell size in image pixels: the network's stride (when the map is ceil(input / stride))
times the image-to-input scale, so the cells of a padded last row or column reach past the image;
a point's feature is sampled bilinearly at its pixel centre. Points and predictions are (x, y) pixels
of the original images, 0-based.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MATCHERS = ('nn', 'mutual_nn', 'soft_argmax', 'ot_rhm')


@dataclass
class FeatureMap:
    """Dense features of one image: ``features`` (C, h, w), L2-normalised per cell, over an
    ``image_size`` (H, W) image; a cell is ``cell_size`` (width, height) image pixels (default: the
    map spans the image exactly)."""
    features: Tensor
    image_size: Tuple[int, int]
    cell_size: Optional[Tuple[float, float]] = None

    def __post_init__(self) -> None:
        if self.cell_size is None:
            self.cell_size = (self.image_size[1] / self.features.shape[2], self.image_size[0] / self.features.shape[1])

    def flat(self) -> Tensor:
        """(C, h * w) features, row-major cells."""
        return self.features.reshape(self.features.shape[0], -1)

    def centres(self) -> Tensor:
        """(h * w, 2) x, y image pixel each cell stands for, row-major."""
        height, width = self.features.shape[1:]
        cell_w, cell_h = self.cell_size
        options = dict(dtype=torch.float64, device=self.features.device)
        ys, xs = torch.meshgrid(torch.arange(height, **options), torch.arange(width, **options),
                                indexing='ij')
        return torch.stack([(xs + 0.5) * cell_w - 0.5, (ys + 0.5) * cell_h - 0.5], dim=-1).reshape(-1, 2)

    def sample(self, points: Tensor) -> Tensor:
        """(K, C) features at ``points`` (K, 2) x, y pixels, bilinear, border-clamped, L2-normalised."""
        span_x = self.cell_size[0] * self.features.shape[2]  # the pixels the map covers (>= the image)
        span_y = self.cell_size[1] * self.features.shape[1]
        grid = torch.stack([(points[:, 0] + 0.5) / span_x * 2 - 1, (points[:, 1] + 0.5) / span_y * 2 - 1], dim=1)
        grid = grid.to(self.features).view(1, 1, -1, 2)
        sampled = F.grid_sample(self.features[None], grid, mode='bilinear', padding_mode='border',
                                align_corners=False)[0, :, 0].T  # (K, C)
        return F.normalize(sampled, dim=1)


class FeatureExtractor:
    """Dense, L2-normalised features of an RGB image from a backbone.

    Args:
        backbone: maps (1, 3, H, W) float RGB in [0, 1] to (1, C, h, w) (e.g. ``SFCBackbone``).
        input_size: (H, W) the image is resized to before the network; None keeps its size.
        max_side: resize so that the longer side has this many pixels (aspect kept); exclusive
            with ``input_size``.
        feature_stride: resample the features bilinearly to ceil(H_in / stride) x ceil(W_in / stride)
            cells of the network input; None keeps the backbone's resolution.
        layers: names of backbone submodules (``dict(backbone.named_modules())`` keys, e.g.
            ``['fine_grained.layer2', 'fine_grained.layer3']``) whose outputs form hyperpixels:
            each is resized bilinearly to the first one's size, L2-normalised, and all are
            concatenated (and normalised again). None uses the backbone's output.
    """

    def __init__(self, backbone: nn.Module, input_size: Optional[Sequence[int]] = None,
                 max_side: Optional[int] = None, feature_stride: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None) -> None:
        if input_size is not None and max_side is not None:
            raise ValueError('FeatureExtractor: give input_size or max_side, not both')
        if input_size is not None and (len(input_size) != 2 or min(input_size) < 8):
            raise ValueError(f'FeatureExtractor: input_size must be (H, W) of at least 8 pixels, got {input_size}')
        if max_side is not None and max_side < 8:
            raise ValueError(f'FeatureExtractor: max_side must be at least 8 pixels, got {max_side}')
        if feature_stride is not None and feature_stride < 1:
            raise ValueError(f'FeatureExtractor: feature_stride must be >= 1, got {feature_stride}')
        self.backbone = backbone
        self.input_size = tuple(input_size) if input_size is not None else None
        self.max_side = max_side
        self.feature_stride = feature_stride
        self.layers = list(layers) if layers else None
        if self.layers:
            modules = dict(backbone.named_modules())
            unknown = [name for name in self.layers if name not in modules]
            if unknown:
                raise ValueError(f'FeatureExtractor: no submodule {", ".join(unknown)} in the backbone; some that '
                                 f'exist: {", ".join(name for name in list(modules)[1:40] if name)}')
            self._modules = [modules[name] for name in self.layers]

    def network_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(H, W) of the network input for an image of ``image_size``."""
        if self.input_size is not None:
            return self.input_size
        if self.max_side is not None:
            scale = self.max_side / max(image_size)
            return max(8, round(image_size[0] * scale)), max(8, round(image_size[1] * scale))
        return tuple(image_size)

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> FeatureMap:
        """``image`` (H, W, 3) uint8 RGB -> its :class:`FeatureMap`."""
        height, width = image.shape[:2]
        size = self.network_size((height, width))
        if size != (height, width):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        parameter = next(self.backbone.parameters(), None)
        device = parameter.device if parameter is not None else torch.device('cpu')
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div_(255)
        if self.layers:
            features = self._hyperpixels(tensor)
        else:
            features = self.backbone(tensor).float()  # (1, C, h, w)
        if self.feature_stride is not None:
            cells = (math.ceil(size[0] / self.feature_stride), math.ceil(size[1] / self.feature_stride))
            if tuple(features.shape[-2:]) != cells:
                features = F.interpolate(features, size=cells, mode='bilinear', align_corners=False)
        cell_size = tuple(stride * scale for stride, scale in
                          zip(self.cell_stride(size, features.shape[-2:]), (width / size[1], height / size[0])))
        return FeatureMap(F.normalize(features, dim=1)[0], (height, width), cell_size)

    @staticmethod
    def cell_stride(network_size: Tuple[int, int], map_size: Sequence[int]) -> Tuple[float, float]:
        """(x, y) network pixels per cell: the integer stride s when the map is ceil(size / s) on both
        axes (a strided network pads the last cell), else size / cells per axis."""
        stride = max(1, round(network_size[1] / map_size[1]))
        if all(math.ceil(pixels / stride) == cells for pixels, cells in zip(network_size, map_size)):
            return float(stride), float(stride)
        return network_size[1] / map_size[1], network_size[0] / map_size[0]

    def _hyperpixels(self, tensor: Tensor) -> Tensor:
        """(1, sum C_l, h0, w0): the layers' outputs at the first layer's size, each L2-normalised."""
        outputs: Dict[int, Tensor] = {}

        def keep(index: int):
            return lambda _module, _input, output: outputs.setdefault(index, output)

        handles = [module.register_forward_hook(keep(index)) for index, module in enumerate(self._modules)]
        try:
            self.backbone(tensor)
        finally:
            for handle in handles:
                handle.remove()
        if len(outputs) != len(self._modules):
            raise RuntimeError(f'FeatureExtractor: layers {self.layers} are not all run by the backbone forward')
        base = outputs[0].shape[-2:]
        maps = []
        for index in range(len(self._modules)):
            output = outputs[index].float()
            if output.shape[-2:] != base:
                output = F.interpolate(output, size=base, mode='bilinear', align_corners=False)
            maps.append(F.normalize(output, dim=1))
        return torch.cat(maps, dim=1)


@dataclass
class MatchResult:
    """Predicted target points (K, 2) x, y pixels (NaN: no prediction) and their scores (K,)."""
    points: np.ndarray
    scores: np.ndarray


def gaussian_filter2d(side: int = 7) -> Tensor:
    """SCOT's Hough-space smoothing filter: (side, side) Gaussian, std side / (2 * 2.354), sum 1."""
    half = (side - 1) / 2
    axis = torch.arange(-half, half + 1, dtype=torch.float64)
    variance = (side / 2 / 2.354) ** 2
    kernel = torch.exp(-(axis[None] ** 2 + axis[:, None] ** 2) / (2 * variance))
    return kernel / kernel.sum()


def sinkhorn(cost: Tensor, epsilon: float, num_iters: int) -> Tensor:
    """Entropic optimal-transport plan (Ns, Nt) between uniform marginals, in the log domain.

    As SCOT's ``perform_sinkhorn`` (a = 1/Ns, then ``num_iters`` times b = nu / K^T a,
    a = mu / K b; plan = diag(a) K diag(b), K = exp(-cost / epsilon)) without its overflow.
    """
    num_src, num_trg = cost.shape
    log_kernel = -cost / epsilon
    log_mu = cost.new_full((num_src,), -math.log(num_src))
    log_nu = cost.new_full((num_trg,), -math.log(num_trg))
    log_a = log_mu.clone()
    for _ in range(num_iters):
        log_b = log_nu - torch.logsumexp(log_kernel + log_a[:, None], dim=0)
        log_a = log_mu - torch.logsumexp(log_kernel + log_b[None, :], dim=1)
    return torch.exp(log_a[:, None] + log_kernel + log_b[None, :])


class PairMatcher:
    """Transfer points from a source to a target :class:`FeatureMap` (see the module docstring).

    Args:
        method: one of ``MATCHERS``.
        softmax_temperature: ``soft_argmax``: softmax temperature (CATs' beta, 0.02).
        kernel_sigma: ``soft_argmax``: std of the Gaussian around the argmax, in target cells (5,
            SFNet/CATs); None: plain soft-argmax.
        ot_exp1, ot_exp2, ot_epsilon, ot_iters: ``ot_rhm``: cosine exponent, plan exponent (SCOT:
            1.0 on SPair-71k, 0.5 on PF-PASCAL/PF-WILLOW), entropic regularisation, Sinkhorn
            iterations (SCOT runs 1).
        hough_cells: ``ot_rhm``: number of Hough-space bins (SCOT 8192).
        rf_cells: ``ot_rhm``: side of a cell's receptive field, in cells; a point moves with the
            cells whose receptive field covers it.
    """

    def __init__(self, method: str = 'nn', softmax_temperature: float = 0.02, kernel_sigma: Optional[float] = 5.0,
                 ot_exp1: float = 1.0, ot_exp2: float = 0.5, ot_epsilon: float = 0.05, ot_iters: int = 1,
                 hough_cells: int = 8192, rf_cells: float = 3.0) -> None:
        if method not in MATCHERS:
            raise ValueError(f'PairMatcher: unknown method {method!r}; choose one of {", ".join(MATCHERS)}')
        if softmax_temperature <= 0 or ot_epsilon <= 0 or ot_iters < 1 or hough_cells < 1 or rf_cells <= 0:
            raise ValueError('PairMatcher: softmax_temperature, ot_epsilon, rf_cells must be > 0 and ot_iters, '
                             'hough_cells >= 1')
        self.method = method
        self.softmax_temperature = softmax_temperature
        self.kernel_sigma = kernel_sigma
        self.ot_exp1, self.ot_exp2, self.ot_epsilon, self.ot_iters = ot_exp1, ot_exp2, ot_epsilon, ot_iters
        self.hough_cells = hough_cells
        self.rf_cells = rf_cells

    def describe(self) -> Dict[str, object]:
        """The settings, for reports."""
        return dict(vars(self))

    @torch.no_grad()
    def __call__(self, source: FeatureMap, target: FeatureMap, points: np.ndarray) -> MatchResult:
        """Transfer ``points`` (K, 2) x, y source pixels to the target image."""
        points_t = torch.as_tensor(np.asarray(points, np.float64).reshape(-1, 2), device=source.features.device)
        if len(points_t) == 0:
            return MatchResult(np.zeros((0, 2)), np.zeros(0))
        if self.method == 'ot_rhm':
            return self._ot_rhm(source, target, points_t)
        similarity = source.sample(points_t) @ target.flat()  # (K, Nt) cosine
        scores, best = similarity.max(dim=1)
        centres = target.centres()  # (Nt, 2)
        if self.method == 'soft_argmax':
            predicted = self._soft_argmax(similarity, best, target)
        else:
            predicted = centres[best].clone()
        if self.method == 'mutual_nn':
            back = (target.flat()[:, best].T @ source.flat()).argmax(dim=1)  # (K,) nearest source cell
            offset = (source.centres()[back] - points_t).abs()
            cell_w, cell_h = source.cell_size
            mutual = (offset[:, 0] <= cell_w) & (offset[:, 1] <= cell_h)
            predicted[~mutual] = float('nan')
        return MatchResult(predicted.cpu().numpy(), scores.double().cpu().numpy())

    def _soft_argmax(self, similarity: Tensor, best: Tensor, target: FeatureMap) -> Tensor:
        height, width = target.features.shape[1:]
        centres = target.centres()  # (Nt, 2)
        if self.kernel_sigma is not None:
            index = torch.arange(height * width, device=similarity.device)
            cell_index = torch.stack([index % width, index // width], dim=1).double()  # (Nt, 2) column, row
            squared = ((cell_index[None] - cell_index[best][:, None]) ** 2).sum(-1)  # (K, Nt) in cells^2
            similarity = similarity * torch.exp(-squared / (2 * self.kernel_sigma ** 2)).to(similarity)
        weights = torch.softmax(similarity.double() / self.softmax_temperature, dim=1)  # (K, Nt)
        return weights @ centres

    def _ot_rhm(self, source: FeatureMap, target: FeatureMap, points: Tensor) -> MatchResult:
        src_centres, trg_centres = source.centres(), target.centres()  # (Ns, 2), (Nt, 2)
        similarity = (source.flat().T @ target.flat()).double().clamp(min=0) ** self.ot_exp1  # (Ns, Nt)
        plan = sinkhorn(1 - similarity, self.ot_epsilon, self.ot_iters)
        votes = (plan * len(src_centres)).clamp(min=0) ** self.ot_exp2

        # Hough space of translations, as SCOT: offset = (source size - source centre) + target centre.
        src_h, src_w = source.image_size
        trg_h, trg_w = target.image_size
        space_w, space_h = src_w + trg_w, src_h + trg_h
        bin_size = math.sqrt(space_w * space_h / self.hough_cells)
        bins_x, bins_y = int(space_w / bin_size) + 1, int(space_h / bin_size) + 1
        offset_x = (src_w - src_centres[:, 0])[:, None] + trg_centres[None, :, 0]
        offset_y = (src_h - src_centres[:, 1])[:, None] + trg_centres[None, :, 1]
        bin_ids = ((offset_x / bin_size).floor().clamp(0, bins_x - 1) +
                   (offset_y / bin_size).floor().clamp(0, bins_y - 1) * bins_x).long()  # (Ns, Nt)
        space = votes.new_zeros(bins_x * bins_y).index_add_(0, bin_ids.view(-1), votes.view(-1))
        kernel = gaussian_filter2d(7).to(votes)
        space = F.conv2d(space.view(1, 1, bins_y, bins_x), kernel[None, None], padding=3).view(-1)
        confidence = votes * space[bin_ids]  # (Ns, Nt)
        scores, best = confidence.max(dim=1)

        # Transfer: each source cell whose receptive field covers the point carries it along its match.
        cell_w, cell_h = source.cell_size
        offset = points[:, None] - src_centres[None]  # (K, Ns, 2)
        covers = ((offset[..., 0].abs() <= self.rf_cells * cell_w / 2) &
                  (offset[..., 1].abs() <= self.rf_cells * cell_h / 2))
        nearest = (offset ** 2).sum(-1).argmin(dim=1)
        # A point outside every receptive field moves with its nearest cell.
        covers[torch.arange(len(points), device=covers.device), nearest] = True
        moved = trg_centres[best][None] + offset  # (K, Ns, 2)
        weight = covers.double()
        predicted = (moved * weight[..., None]).sum(1) / weight.sum(1, keepdim=True)
        point_scores = (scores[None] * weight).sum(1) / weight.sum(1)
        return MatchResult(predicted.cpu().numpy(), point_scores.cpu().numpy())
