"""Point matching between two images over dense features: the one module evaluation and ``sfc-match`` use.

:class:`FeatureExtractor` turns an image into a :class:`FeatureMap` (L2-normalised features plus
the pixel each cell stands for) with any backbone that maps RGB in [0, 1] to a feature map: at the
image's size or resized, at the backbone's stride or resampled to another, from its output or from
several of its layers ("hyperpixels"). :class:`PairMatcher` transfers source points to the target
image with one of:

- ``nn``: nearest neighbour (highest cosine) over the target cells;
- ``mutual_nn``: the nearest neighbour, kept only when the target cell's own nearest source cell is
  the point's cell (within one cell); other points get no prediction (NaN);
- ``soft_argmax``: soft-argmax as CATs computes it: a softmax with temperature over the target
  cells, the expected position is the prediction;
- ``kernel_soft_argmax``: SFNet's kernel soft-argmax: the correlation is first multiplied by a
  Gaussian centred on its argmax, then as ``soft_argmax``;
- ``ot_rhm``: SCOT: optimal transport (Sinkhorn) of the exponentiated cosine similarity between
  all cells, then regularized Hough matching (votes for the translation between cells, smoothed,
  re-weighting the transport plan); points move with the matches of the cells whose receptive
  field covers them (a fixed number of cells, or as SCOT the network layer's receptive field).

Every matcher can use a soft box prior (``box_prior_sigma``, needs the annotated object boxes of
both images): the similarity is multiplied by a Gaussian around the position the box prior gives
(:class:`BoxPrior`). Flip-aware matching (:func:`orientation_score`, used by the evaluation model
and ``sfc-match``) matches against the mirrored target when its features agree better.

Geometry: a cell (i, j) stands for the image pixel ((j + 0.5) * cw - 0.5, (i + 0.5) * ch - 0.5), where
(cw, ch) is the cell size in image pixels: the network's stride (when the map is ceil(input / stride))
times the image-to-input scale, so the cells of a padded last row or column reach past the image;
a point's feature is sampled bilinearly at its pixel centre. Points and predictions are (x, y) pixels
of the original images, 0-based.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfc_plugin.utils import image_tensor

MATCHERS = ('nn', 'mutual_nn', 'soft_argmax', 'kernel_soft_argmax', 'ot_rhm')
# 'per_layer': each layer's output L2-normalised, then concatenated (and normalised again);
# 'hpf': HPF / SCOT: the layers' pre-activation outputs upsampled (bilinear, corners aligned) to the
# first one's map, concatenated, and only the whole vector L2-normalised.
HYPERPIXEL_STYLES = ('per_layer', 'hpf')
# How far a source cell carries points in ``ot_rhm``: a fixed number of cells, or the network's
# receptive field (SCOT's rule).
RECEPTIVE_FIELDS = ('cells', 'network')


@dataclass
class FeatureMap:
    """Dense features of one image: ``features`` (C, h, w), L2-normalised per cell, over an
    ``image_size`` (H, W) image; a cell is ``cell_size`` (width, height) image pixels (default: the
    map spans the image exactly); ``receptive_field`` (width, height) is the side of a cell's
    receptive field in image pixels when the network's layers are known (None otherwise)."""
    features: Tensor
    image_size: Tuple[int, int]
    cell_size: Optional[Tuple[float, float]] = None
    receptive_field: Optional[Tuple[float, float]] = None

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


def receptive_field(backbone: nn.Module, layer: Optional[str] = None, probe: Optional[Tensor] = None) -> float:
    """Side, in network-input pixels, of the theoretical receptive field of one cell of ``layer``'s
    output (None: of the backbone's output); ``probe`` is the (1, 3, H, W) input the network is run on
    to see which layers run in which order (default: zeros, 64 x 64).

    The convolutions and poolings that run before the layer finishes are composed in the order they
    run: side r and jump j start at 1, and each kernel k (dilation d) with stride s gives
    r += d * (k - 1) * j, then j *= s (for a ResNet-50 this gives HPF / SCOT's table: 11 after the
    stem, 19, 27, 35 in layer1, ...). Residual shortcut convolutions (``downsample``) are parallel to
    the main path and not counted. For a two-branch ``SFCBackbone`` only the branch that holds the
    layer counts, and its output takes the larger of the two branches.
    """
    branches = [name for name in ('fine_grained', 'semantic') if getattr(backbone, name, None) is not None]
    modules = dict(backbone.named_modules())
    if layer is not None and layer not in modules:
        raise ValueError(f'receptive_field: no submodule {layer} in the backbone')
    order: List[Tuple[str, Optional[nn.Module]]] = []

    def record(name: str, module: Optional[nn.Module]):
        return lambda _module, _input, _output: order.append((name, module))

    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    handles = [module.register_forward_hook(record(name, module)) for name, module in modules.items()
               if isinstance(module, kinds) and 'downsample' not in name.split('.')]
    if layer is not None:
        handles.append(modules[layer].register_forward_hook(record(layer, None)))
    if probe is None:
        parameter = next(backbone.parameters(), None)
        probe = torch.zeros(1, 3, 64, 64, device=parameter.device if parameter is not None else None)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(probe)
    finally:
        backbone.train(was_training)
        for handle in handles:
            handle.remove()

    def side(prefix: str) -> float:
        rf, jump = 1.0, 1.0
        for name, module in order:
            if module is None:  # the layer finished
                break
            if not name.startswith(prefix):
                continue
            kernel, stride = _pair(module.kernel_size)[1], _pair(module.stride)[1]
            dilation = _pair(getattr(module, 'dilation', 1))[1]
            rf += dilation * (kernel - 1) * jump
            jump *= stride
        return rf

    if branches and layer is not None and layer.split('.')[0] in branches:
        return side(layer.split('.')[0] + '.')
    if branches and layer is None:
        return max(side(name + '.') for name in branches)
    return side('')


def _pair(value) -> Tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


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
            ``['fine_grained.layer2', 'fine_grained.layer3']``) whose outputs form hyperpixels at the
            first one's map size (see ``hyperpixels``). None uses the backbone's output.
        hyperpixels: how the layers are combined, one of ``HYPERPIXEL_STYLES``: 'per_layer' (each
            output L2-normalised, concatenated) or 'hpf' (as HPF / SCOT: the pre-activation outputs,
            i.e. before a block's final ReLU, upsampled with aligned corners, concatenated, and the
            whole vector normalised).
    """

    def __init__(self, backbone: nn.Module, input_size: Optional[Sequence[int]] = None,
                 max_side: Optional[int] = None, feature_stride: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None, hyperpixels: str = 'per_layer') -> None:
        if input_size is not None and max_side is not None:
            raise ValueError('FeatureExtractor: give input_size or max_side, not both')
        if input_size is not None and (len(input_size) != 2 or min(input_size) < 8):
            raise ValueError(f'FeatureExtractor: input_size must be (H, W) of at least 8 pixels, got {input_size}')
        if max_side is not None and max_side < 8:
            raise ValueError(f'FeatureExtractor: max_side must be at least 8 pixels, got {max_side}')
        if feature_stride is not None and feature_stride < 1:
            raise ValueError(f'FeatureExtractor: feature_stride must be >= 1, got {feature_stride}')
        if hyperpixels not in HYPERPIXEL_STYLES:
            raise ValueError(f'FeatureExtractor: hyperpixels must be one of {", ".join(HYPERPIXEL_STYLES)}, '
                             f'got {hyperpixels!r}')
        self.backbone = backbone
        self.input_size = tuple(input_size) if input_size is not None else None
        self.max_side = max_side
        self.feature_stride = feature_stride
        self.layers = list(layers) if layers else None
        self.hyperpixels = hyperpixels
        self._receptive_field: Optional[float] = None
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

    def receptive_field(self, probe: Optional[Tensor] = None) -> float:
        """Receptive-field side of a cell, in network-input pixels: of the first hyperpixel layer (as
        SCOT) or of the backbone's output (see :func:`receptive_field`); computed once, by running the
        network on ``probe`` (the first image's input)."""
        if self._receptive_field is None:
            self._receptive_field = receptive_field(self.backbone, self.layers[0] if self.layers else None, probe)
        return self._receptive_field

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> FeatureMap:
        """``image`` (H, W, 3) uint8 RGB -> its :class:`FeatureMap`."""
        height, width = image.shape[:2]
        size = self.network_size((height, width))
        if size != (height, width):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        parameter = next(self.backbone.parameters(), None)
        device = parameter.device if parameter is not None else torch.device('cpu')
        tensor = image_tensor(image, device)
        if self.layers:
            features = self._hyperpixels(tensor)
        else:
            features = self.backbone(tensor).float()  # (1, C, h, w)
        if self.feature_stride is not None:
            cells = (math.ceil(size[0] / self.feature_stride), math.ceil(size[1] / self.feature_stride))
            if tuple(features.shape[-2:]) != cells:
                features = F.interpolate(features, size=cells, mode='bilinear', align_corners=False)
        scale = (width / size[1], height / size[0])  # image pixels per network pixel (x, y)
        cell_size = tuple(stride * factor for stride, factor in
                          zip(self.cell_stride(size, features.shape[-2:]), scale))
        field = 2 * (self.receptive_field(tensor) // 2)  # SCOT's box: the cell's pixel +- floor(side / 2)
        return FeatureMap(F.normalize(features, dim=1)[0], (height, width), cell_size,
                          (field * scale[0], field * scale[1]))

    @staticmethod
    def cell_stride(network_size: Tuple[int, int], map_size: Sequence[int]) -> Tuple[float, float]:
        """(x, y) network pixels per cell: the integer stride s when the map is ceil(size / s) on both
        axes (a strided network pads the last cell), else size / cells per axis."""
        stride = max(1, round(network_size[1] / map_size[1]))
        if all(math.ceil(pixels / stride) == cells for pixels, cells in zip(network_size, map_size)):
            return float(stride), float(stride)
        return network_size[1] / map_size[1], network_size[0] / map_size[0]

    def _hyperpixels(self, tensor: Tensor) -> Tensor:
        """(1, sum C_l, h0, w0): the layers' outputs at the first layer's size, combined as
        ``self.hyperpixels`` says (the caller normalises the whole vector)."""
        outputs: Dict[int, Tensor] = {}
        pre_activation = self.hyperpixels == 'hpf'
        last_input: Dict[int, Tuple[Tensor, nn.Module]] = {}

        def start(index: int):
            return lambda _module, _input: last_input.pop(index, None)

        def remember(index: int):  # a ReLU's input, cloned before an in-place ReLU overwrites it
            return lambda module, inputs: last_input.__setitem__(index, (inputs[0].clone(), module))

        def keep(index: int):
            def hook(_module, _input, output):
                if pre_activation and index in last_input:
                    before, activation = last_input[index]
                    top = 6.0 if isinstance(activation, nn.ReLU6) else None
                    # The layer ends with this activation: keep what went into it.
                    if before.shape == output.shape and torch.equal(before.clamp(0, top), output):
                        output = before
                outputs.setdefault(index, output)
            return hook

        handles = []
        for index, module in enumerate(self._modules):
            handles.append(module.register_forward_hook(keep(index)))
            if pre_activation:
                handles.append(module.register_forward_pre_hook(start(index)))
                handles += [child.register_forward_pre_hook(remember(index)) for child in module.modules()
                            if isinstance(child, (nn.ReLU, nn.ReLU6))]
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
                output = F.interpolate(output, size=base, mode='bilinear', align_corners=pre_activation)
            maps.append(output if pre_activation else F.normalize(output, dim=1))
        return torch.cat(maps, dim=1)


@dataclass
class MatchResult:
    """Predicted target points (K, 2) x, y pixels (NaN: no prediction) and their scores (K,)."""
    points: np.ndarray
    scores: np.ndarray


@dataclass
class BoxPrior:
    """The box-prior transfer, from the annotated object boxes (x1, y1, x2, y2) of both images: a point
    keeps its relative position in the box, mirrored left-right when ``mirrored`` (the objects face
    opposite ways)."""
    src_box: np.ndarray
    trg_box: np.ndarray
    mirrored: bool = False

    def transfer(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) source pixels -> (K, 2) target pixels."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        src_origin, src_span = self.src_box[:2], self.src_box[2:] - self.src_box[:2]
        trg_origin, trg_span = self.trg_box[:2], self.trg_box[2:] - self.trg_box[:2]
        relative = np.divide(points - src_origin, src_span, out=np.full_like(points, 0.5), where=src_span > 0)
        if self.mirrored:
            relative[:, 0] = 1 - relative[:, 0]
        return trg_origin + relative * trg_span

    def target_side(self) -> float:
        """Max side of the target box, pixels."""
        return float(max(self.trg_box[2] - self.trg_box[0], self.trg_box[3] - self.trg_box[1]))


def mirror_points(points: np.ndarray, width: int) -> np.ndarray:
    """(K, 2) x, y pixels of an image ``width`` wide -> the same points in its left-right mirror."""
    mirrored = np.array(points, np.float64, copy=True)
    mirrored[..., 0] = width - 1 - mirrored[..., 0]
    return mirrored


def mirror_box(box: np.ndarray, width: int) -> np.ndarray:
    """x1, y1, x2, y2 of a box -> the box in the left-right mirror of an image ``width`` wide."""
    return np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]], np.float64)


def orientation_score(source: FeatureMap, target: FeatureMap, src_box: Optional[np.ndarray] = None,
                      trg_box: Optional[np.ndarray] = None) -> float:
    """How well the target's features agree with the source's where the boxes put them: the mean over
    source cells (those whose centre lies in ``src_box``; all when None or none does) of the cosine to
    the target's feature at the same relative position in ``trg_box`` (None: the whole image).

    Flip-aware matching compares it for the target and its mirror (test-time pose alignment, Zhang et
    al., "Telling Left from Right", CVPR 2024). Their criterion, the mean best cosine anywhere in the
    target, barely changes under mirroring for features that are nearly mirror-invariant, as
    ImageNet-trained ones are; this one compares the layouts, which mirroring does change."""
    height, width = source.image_size
    src_box = np.array([0, 0, width - 1, height - 1], np.float64) if src_box is None else np.asarray(src_box,
                                                                                                  np.float64)
    trg_height, trg_width = target.image_size
    trg_box = (np.array([0, 0, trg_width - 1, trg_height - 1], np.float64) if trg_box is None
               else np.asarray(trg_box, np.float64))
    centres = source.centres().cpu().numpy()
    inside = ((centres[:, 0] >= src_box[0]) & (centres[:, 0] <= src_box[2]) &
              (centres[:, 1] >= src_box[1]) & (centres[:, 1] <= src_box[3]))
    if not inside.any():
        inside[:] = True
    mapped = BoxPrior(src_box, trg_box).transfer(centres[inside])
    sampled = target.sample(torch.as_tensor(mapped, device=target.features.device))  # (K, C)
    cosine = (source.flat().T[torch.as_tensor(inside, device=sampled.device)] * sampled).sum(dim=1)
    return float(cosine.double().mean())


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


def transfer_points(points: Tensor, src_centres: Tensor, matched: Tensor, scores: Tensor,
                    field: Tuple[float, float]) -> Tuple[Tensor, Tensor]:
    """SCOT's keypoint transfer: every source cell whose receptive field (``field`` = width, height,
    centred on the cell, edges included) covers a point carries it along its match; the prediction is
    the mean over those cells of (matched target centre + point - source centre), the score the mean
    of their match scores. A point outside every field moves with its nearest cell.

    Args:
        points: (K, 2) source pixels; src_centres: (Ns, 2); matched: (Ns, 2) each source cell's
            matched target pixel; scores: (Ns,).
    Returns:
        (K, 2) target pixels and (K,) scores.
    """
    offset = points[:, None] - src_centres[None]  # (K, Ns, 2)
    covers = (offset[..., 0].abs() <= field[0] / 2) & (offset[..., 1].abs() <= field[1] / 2)
    nearest = (offset ** 2).sum(-1).argmin(dim=1)
    covers[torch.arange(len(points), device=covers.device), nearest] |= ~covers.any(dim=1)
    weight = covers.double()
    moved = matched[None] + offset  # (K, Ns, 2)
    predicted = (moved * weight[..., None]).sum(1) / weight.sum(1, keepdim=True)
    return predicted, (scores[None] * weight).sum(1) / weight.sum(1)


class PairMatcher:
    """Transfer points from a source to a target :class:`FeatureMap` (see the module docstring).

    Args:
        method: one of ``MATCHERS``.
        softmax_temperature: ``soft_argmax``, ``kernel_soft_argmax``: softmax temperature (CATs' beta,
            0.02; SFNet's 1 / 50).
        kernel_sigma: ``kernel_soft_argmax`` only: std of the Gaussian around the argmax, in target
            cells (None: SFNet's 5).
        ot_exp1, ot_exp2, ot_epsilon, ot_iters: ``ot_rhm``: cosine exponent, plan exponent (SCOT:
            1.0 on SPair-71k, 0.5 on PF-PASCAL/PF-WILLOW; the pair configs set it per dataset),
            entropic regularisation, Sinkhorn iterations (SCOT runs 1).
        hough_cells: ``ot_rhm``: number of Hough-space bins (SCOT 8192).
        receptive_field: ``ot_rhm``: a point moves with the source cells whose receptive field covers
            it; 'cells': a square of ``rf_cells`` cells centred on the cell; 'network' (SCOT's rule):
            the theoretical receptive field of the network layer the map comes from (the first
            hyperpixel layer, or the backbone's output; :func:`receptive_field`), centred on the cell.
        rf_cells: side of the 'cells' receptive field, in cells.
        box_prior_sigma: soft box prior (uses the annotated boxes of both images): the similarity
            (clamped at 0) is multiplied by a Gaussian around the box-prior position, of std this
            fraction of the target box's max side; None: off.
    """

    def __init__(self, method: str = 'nn', softmax_temperature: float = 0.02, kernel_sigma: Optional[float] = None,
                 ot_exp1: float = 1.0, ot_exp2: float = 0.5, ot_epsilon: float = 0.05, ot_iters: int = 1,
                 hough_cells: int = 8192, receptive_field: str = 'cells', rf_cells: float = 3.0,
                 box_prior_sigma: Optional[float] = None) -> None:
        if method not in MATCHERS:
            raise ValueError(f'PairMatcher: unknown method {method!r}; choose one of {", ".join(MATCHERS)}')
        if kernel_sigma is not None and method != 'kernel_soft_argmax':
            raise ValueError(f'PairMatcher: kernel_sigma belongs to method kernel_soft_argmax (SFNet\'s kernel '
                             f'soft-argmax), not {method!r}; soft_argmax is the plain soft-argmax of CATs '
                             f'(this was the kernel one in earlier versions)')
        if softmax_temperature <= 0 or ot_epsilon <= 0 or ot_iters < 1 or hough_cells < 1:
            raise ValueError('PairMatcher: softmax_temperature, ot_epsilon must be > 0 and ot_iters, hough_cells >= 1')
        if rf_cells <= 0 or (kernel_sigma is not None and kernel_sigma <= 0):
            raise ValueError('PairMatcher: rf_cells and kernel_sigma must be > 0')
        if receptive_field not in RECEPTIVE_FIELDS:
            raise ValueError(f'PairMatcher: receptive_field must be one of {", ".join(RECEPTIVE_FIELDS)}, '
                             f'got {receptive_field!r}')
        if box_prior_sigma is not None and box_prior_sigma <= 0:
            raise ValueError(f'PairMatcher: box_prior_sigma must be > 0 (or None), got {box_prior_sigma}')
        self.method = method
        self.softmax_temperature = softmax_temperature
        self.kernel_sigma = 5.0 if method == 'kernel_soft_argmax' and kernel_sigma is None else kernel_sigma
        self.ot_exp1, self.ot_exp2, self.ot_epsilon, self.ot_iters = ot_exp1, ot_exp2, ot_epsilon, ot_iters
        self.hough_cells = hough_cells
        self.receptive_field = receptive_field
        self.rf_cells = rf_cells
        self.box_prior_sigma = box_prior_sigma

    def describe(self) -> Dict[str, object]:
        """The settings, for reports."""
        return dict(vars(self))

    @torch.no_grad()
    def __call__(self, source: FeatureMap, target: FeatureMap, points: np.ndarray,
                 box_prior: Optional[BoxPrior] = None) -> MatchResult:
        """Transfer ``points`` (K, 2) x, y source pixels to the target image; ``box_prior`` is needed
        (and only used) with ``box_prior_sigma``."""
        if self.box_prior_sigma is not None and box_prior is None:
            raise ValueError('PairMatcher: box_prior_sigma needs the annotated boxes of both images (a BoxPrior)')
        prior = box_prior if self.box_prior_sigma is not None else None
        points_t = torch.as_tensor(np.asarray(points, np.float64).reshape(-1, 2), device=source.features.device)
        if len(points_t) == 0:
            return MatchResult(np.zeros((0, 2)), np.zeros(0))
        if self.method == 'ot_rhm':
            return self._ot_rhm(source, target, points_t, prior)
        similarity = source.sample(points_t) @ target.flat()  # (K, Nt) cosine
        if prior is not None:
            similarity = similarity.clamp(min=0) * self._prior_weights(prior, points_t, target).to(similarity)
        scores, best = similarity.max(dim=1)
        centres = target.centres()  # (Nt, 2)
        if self.method in ('soft_argmax', 'kernel_soft_argmax'):
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

    def _prior_weights(self, prior: BoxPrior, points: Tensor, target: FeatureMap) -> Tensor:
        """(K, Nt) Gaussian weights of the target cells around each point's box-prior position."""
        expected = torch.as_tensor(prior.transfer(points.cpu().numpy()), device=points.device)  # (K, 2)
        sigma = self.box_prior_sigma * max(prior.target_side(), 1.0)
        squared = ((target.centres()[None] - expected[:, None]) ** 2).sum(-1)  # (K, Nt)
        return torch.exp(-squared / (2 * sigma ** 2))

    def _soft_argmax(self, similarity: Tensor, best: Tensor, target: FeatureMap) -> Tensor:
        height, width = target.features.shape[1:]
        centres = target.centres()  # (Nt, 2)
        if self.method == 'kernel_soft_argmax':
            index = torch.arange(height * width, device=similarity.device)
            cell_index = torch.stack([index % width, index // width], dim=1).double()  # (Nt, 2) column, row
            squared = ((cell_index[None] - cell_index[best][:, None]) ** 2).sum(-1)  # (K, Nt) in cells^2
            similarity = similarity * torch.exp(-squared / (2 * self.kernel_sigma ** 2)).to(similarity)
        weights = torch.softmax(similarity.double() / self.softmax_temperature, dim=1)  # (K, Nt)
        return weights @ centres

    def _ot_rhm(self, source: FeatureMap, target: FeatureMap, points: Tensor,
                prior: Optional[BoxPrior]) -> MatchResult:
        src_centres, trg_centres = source.centres(), target.centres()  # (Ns, 2), (Nt, 2)
        similarity = (source.flat().T @ target.flat()).double().clamp(min=0) ** self.ot_exp1  # (Ns, Nt)
        if prior is not None:
            similarity = similarity * self._prior_weights(prior, src_centres, target)
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

        predicted, point_scores = transfer_points(points, src_centres, trg_centres[best], scores,
                                                  self.field_size(source))
        return MatchResult(predicted.cpu().numpy(), point_scores.cpu().numpy())

    def field_size(self, source: FeatureMap) -> Tuple[float, float]:
        """(width, height) in source pixels of the receptive field ``ot_rhm`` transfers points with."""
        if self.receptive_field == 'network':
            if source.receptive_field is None:
                raise ValueError("PairMatcher: receptive_field='network' needs a feature map from a FeatureExtractor "
                                 "(this one has no receptive field)")
            return source.receptive_field
        return self.rf_cells * source.cell_size[0], self.rf_cells * source.cell_size[1]
