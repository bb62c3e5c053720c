"""Cross-instance cycle consistency: the pixel-level term of Xiao et al., "Learning Contrastive
Representation for Semantic Correspondence" (IJCV 2022), added to MoCo's image-level term.

Given a source image I1 and a target image I2 showing two instances of one category:

1. Attention of I1 (no gradient): the cosine between the global-average-pooled ``attention_layer``
   feature and the feature of each cell.
2. A crop I0 of I1: horizontal flip (probability ``flip_prob``), rotation by U(-rotation,
   rotation) degrees about the image centre, then a ``crop_size`` square centred at the warped
   centre of the attention's argmax cell, moved inside the image. The crop is sampled from I1
   through the inverse warp, so every crop pixel's position in I1 is known exactly; the label
   ``c*(p)`` of crop cell p is the I1 position of the cell's centre.
3. Walk crop -> I2 -> I1 on L2-normalised ``walk_layer`` features f0, f2, f1:
   ``A = softmax_row(f0^T f2 / tau) softmax_row(f2^T f1 / tau)``; the predicted position of p
   is ``sum_q A(p, q) centre(q)``, the I1 cell centres weighted by the walk.
4. ``loss_cycle = loss_weight * mean((prediction - c*)^2)``, in I1 pixels squared.

Coordinates are continuous image coordinates: pixel k covers [k, k + 1), so a cell j of size s has
its centre at s * (j + 0.5). The reference implementation labels a crop cell with the position of
its first (top-left) pixel while it predicts cell centres, a constant half-cell offset that a
perfect walk cannot remove; ``label='corner'`` reproduces that label for comparison, the default
``label='centre'`` labels cell centres, the same points the prediction is made of.

Several ``walk_layer`` names give hyperpixel features: each layer's map is resized bilinearly to
the first one's size, L2-normalised, and the maps are concatenated (as the pair matcher's
``FeatureExtractor`` does); the label-free layer search uses this.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfc_plugin.registry import MODELS

LABELS = ('centre', 'corner')


class _OutputsCollected(Exception):
    """Raised by a forward hook once every requested layer has run, to skip the rest of the network."""


def layer_outputs(backbone: nn.Module, images: Tensor, names: Sequence[str]) -> List[Tensor]:
    """Outputs of the backbone submodules ``names`` (``named_modules()`` keys) for ``images``.

    The forward stops as soon as every named layer has run, so layers after them cost nothing.
    A module that runs twice keeps its first output.
    """
    modules = dict(backbone.named_modules())
    unknown = [name for name in names if name not in modules]
    if unknown:
        raise ValueError(f'no submodule {", ".join(unknown)} in the backbone {type(backbone).__name__}; '
                         f'some that exist: {", ".join(name for name in list(modules)[1:40])}')
    outputs: Dict[str, Tensor] = {}
    wanted = set(names)

    def keep(name: str):
        def hook(_module, _input, output):
            outputs.setdefault(name, output)
            if wanted <= outputs.keys():
                raise _OutputsCollected
        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in wanted]
    try:
        backbone(images)
    except _OutputsCollected:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in names if name not in outputs]
    if missing:
        raise RuntimeError(f'layers {", ".join(missing)} are not run by the forward of {type(backbone).__name__}')
    return [outputs[name] for name in names]


def hyperpixels(maps: Sequence[Tensor]) -> Tensor:
    """(B, sum C_l, h, w): each map resized bilinearly to the first one's (h, w), L2-normalised per
    cell, concatenated and L2-normalised again."""
    size = maps[0].shape[-2:]
    resized = [feature if feature.shape[-2:] == size else
               F.interpolate(feature, size=size, mode='bilinear', align_corners=False) for feature in maps]
    return F.normalize(torch.cat([F.normalize(feature.float(), dim=1) for feature in resized], dim=1), dim=1)


def cell_size(image_size: Sequence[int], map_size: Sequence[int]) -> Tuple[float, float]:
    """(x, y) image pixels per cell of an (h, w) map of an (H, W) image: the integer stride s when
    the map is ceil(size / s) on both axes (a strided network pads the last cell), else size / cells."""
    stride = max(1, round(image_size[1] / map_size[1]))
    if all(math.ceil(pixels / stride) == cells for pixels, cells in zip(image_size, map_size)):
        return float(stride), float(stride)
    return image_size[1] / map_size[1], image_size[0] / map_size[0]


def cell_centres(map_size: Sequence[int], size: Tuple[float, float], device=None) -> Tensor:
    """(h * w, 2) x, y centre of each cell of an (h, w) map with cells of ``size`` (x, y) pixels, row-major."""
    rows = (torch.arange(map_size[0], dtype=torch.float32, device=device) + 0.5) * size[1]
    cols = (torch.arange(map_size[1], dtype=torch.float32, device=device) + 0.5) * size[0]
    ys, xs = torch.meshgrid(rows, cols, indexing='ij')
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def attention_map(features: Tensor, per_image: bool = True) -> Tensor:
    """(B, C, h, w) -> (B, h, w): cosine between the global-average-pooled feature and each cell,
    min-max normalised to [0, 1] per image (``per_image``) or over the whole batch (as the
    reference code). The crop only uses each image's argmax, which both choices leave unchanged."""
    features = features.detach().float()
    pooled = features.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    similarity = F.cosine_similarity(features, pooled, dim=1)  # (B, h, w)
    dims = (1, 2) if per_image else (0, 1, 2)
    low, high = similarity.amin(dim=dims, keepdim=True), similarity.amax(dim=dims, keepdim=True)
    return (similarity - low) / (high - low).clamp_min(1e-12)


class Crops(NamedTuple):
    """Where the crops of a batch come from: ``flips`` (B,) bool, ``angles`` (B,) radians, and
    ``origins`` (B, 2) x, y of each crop's top-left corner in the warped image (integer-valued)."""
    flips: Tensor
    angles: Tensor
    origins: Tensor


def warp_points(points: Tensor, flips: Tensor, angles: Tensor, image_size: Sequence[int]) -> Tensor:
    """Image points (B, ..., 2) -> their position after the flip (x -> W - x) and the rotation by
    ``angles`` about the image centre (the warp that makes the crop's image)."""
    height, width = image_size
    centre = points.new_tensor([width / 2, height / 2])
    shape = (-1,) + (1,) * (points.dim() - 2)
    x = torch.where(flips.view(shape), width - points[..., 0], points[..., 0])
    offset = torch.stack([x, points[..., 1]], dim=-1) - centre
    cos, sin = torch.cos(angles).view(shape), torch.sin(angles).view(shape)
    rotated = torch.stack([cos * offset[..., 0] - sin * offset[..., 1],
                           sin * offset[..., 0] + cos * offset[..., 1]], dim=-1)
    return rotated + centre


def unwarp_points(points: Tensor, flips: Tensor, angles: Tensor, image_size: Sequence[int]) -> Tensor:
    """Points of the warped image (B, ..., 2) -> their source image position: the inverse of
    :func:`warp_points` (rotation by -angle, then the flip)."""
    height, width = image_size
    centre = points.new_tensor([width / 2, height / 2])
    shape = (-1,) + (1,) * (points.dim() - 2)
    offset = points - centre
    cos, sin = torch.cos(angles).view(shape), torch.sin(angles).view(shape)
    unrotated = torch.stack([cos * offset[..., 0] + sin * offset[..., 1],
                             -sin * offset[..., 0] + cos * offset[..., 1]], dim=-1) + centre
    x = torch.where(flips.view(shape), width - unrotated[..., 0], unrotated[..., 0])
    return torch.stack([x, unrotated[..., 1]], dim=-1)


def crop_positions(crops: Crops, crop_size: int, image_size: Sequence[int]) -> Tensor:
    """(B, S, S, 2) source position (x, y) of the centre of every crop pixel."""
    offsets = cell_centres((crop_size, crop_size), (1.0, 1.0), crops.origins.device)  # (S * S, 2)
    points = crops.origins[:, None, :] + offsets[None]
    return unwarp_points(points, crops.flips, crops.angles, image_size).view(-1, crop_size, crop_size, 2)


def sample_at(images: Tensor, positions: Tensor) -> Tensor:
    """Bilinear samples (B, C, h, w) of ``images`` (B, C, H, W) at ``positions`` (B, h, w, 2) x, y,
    zero outside the image."""
    height, width = images.shape[-2:]
    scale = positions.new_tensor([2 / width, 2 / height])
    return F.grid_sample(images, positions * scale - 1, mode='bilinear', padding_mode='zeros',
                         align_corners=False)


@MODELS.register_module()
class CrossInstanceCycle(nn.Module):
    """Cross-instance cycle-consistency loss of a backbone on (source, target) image pairs.

    Args:
        walk_layer: backbone submodule whose output is walked (``layer3`` of a ResNet, stride 16;
            the reference's bottleneck 13 of ResNet-50), or several names for hyperpixels.
        attention_layer: submodule whose output gives the attention (the last layer, ``layer4``).
        crop_size: side of the square crop, pixels (128 for 224-pixel pairs in the reference).
        rotation: largest rotation of the crop, degrees.
        flip_prob: probability of a horizontal flip.
        temperature: tau of both affinities (0.0007).
        loss_weight: weight of the term (5e-4 for PF-PASCAL and SPair-71k, 5e-5 for PF-WILLOW).
        label: ``'centre'`` (the crop cells' centres, consistent with the prediction) or
            ``'corner'`` (each cell's first pixel, as the reference code; half a cell off).
        per_image_attention: min-max normalise the attention per image (True) or over the batch.
    """

    def __init__(self,
                 walk_layer: Union[str, Sequence[str]] = 'layer3',
                 attention_layer: str = 'layer4',
                 crop_size: int = 128,
                 rotation: float = 10.0,
                 flip_prob: float = 0.5,
                 temperature: float = 0.0007,
                 loss_weight: float = 5e-4,
                 label: str = 'centre',
                 per_image_attention: bool = True) -> None:
        super().__init__()
        if label not in LABELS:
            raise ValueError(f'CrossInstanceCycle: label must be one of {LABELS}, got {label!r}')
        if crop_size < 1 or temperature <= 0 or not 0 <= flip_prob <= 1:
            raise ValueError('CrossInstanceCycle: needs crop_size >= 1, temperature > 0 and flip_prob in '
                             f'[0, 1], got {crop_size}, {temperature}, {flip_prob}')
        self.walk_layers = [walk_layer] if isinstance(walk_layer, str) else list(walk_layer)
        self.attention_layer = attention_layer
        self.crop_size = crop_size
        self.rotation = rotation
        self.flip_prob = flip_prob
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.label = label
        self.per_image_attention = per_image_attention

    def sample_crops(self, attention_features: Tensor, image_size: Sequence[int],
                     generator: Optional[torch.Generator] = None) -> Crops:
        """Random flips and rotations, and the crop origins around the warped attention argmax.

        ``attention_features`` (B, C, h, w) of the source images of ``image_size`` (H, W); random
        numbers come from ``generator`` (CPU) or torch's global generator.
        """
        height, width = image_size
        if self.crop_size > min(height, width):
            raise ValueError(f'CrossInstanceCycle: crop_size {self.crop_size} exceeds the images ({height}, {width})')
        batch, device = attention_features.shape[0], attention_features.device
        flips = (torch.rand(batch, generator=generator) < self.flip_prob).to(device)
        angles = ((torch.rand(batch, generator=generator) * 2 - 1) * math.radians(self.rotation)).to(device)
        attention = attention_map(attention_features, self.per_image_attention)
        peak = attention.flatten(1).argmax(dim=1)  # (B,)
        centres = cell_centres(attention.shape[-2:], cell_size(image_size, attention.shape[-2:]), device)[peak]
        warped = warp_points(centres, flips, angles, image_size)  # (B, 2)
        limit = warped.new_tensor([width - self.crop_size, height - self.crop_size])
        origins = torch.minimum(torch.round(warped - self.crop_size / 2).clamp_min(0), limit)
        return Crops(flips, angles, origins)

    def crop(self, images: Tensor, crops: Crops) -> Tensor:
        """(B, 3, H, W) source images -> (B, 3, S, S) crops."""
        return sample_at(images, crop_positions(crops, self.crop_size, images.shape[-2:]).to(images.dtype))

    def labels(self, crops: Crops, crop_map_size: Sequence[int], image_size: Sequence[int]) -> Tensor:
        """(B, h0 * w0, 2) source position of each crop cell (the label c*), row-major cells."""
        size = cell_size((self.crop_size, self.crop_size), crop_map_size)
        points = cell_centres(crop_map_size, size, crops.origins.device)  # (h0 * w0, 2) in the crop
        if self.label == 'centre':
            return unwarp_points(crops.origins[:, None] + points[None], crops.flips, crops.angles, image_size)
        # the first pixel of each cell (nearest-neighbour downsampling picks it), labelled with the
        # source pixel index its centre comes from, as a warped grid of pixel indices holds it
        first = torch.floor(points - points.new_tensor(size) / 2)
        return unwarp_points(crops.origins[:, None] + first[None] + 0.5, crops.flips, crops.angles, image_size) - 0.5

    def walk(self, crop_features: Tensor, target_features: Tensor, source_features: Tensor,
             image_size: Sequence[int]) -> Tensor:
        """Predicted source positions (B, h0 * w0, 2) of the crop cells after crop -> target -> source.

        Features are (B, C, h, w) and L2-normalised per cell; ``image_size`` is the source's (H, W).
        """
        f0, f2, f1 = (feature.float().flatten(2) for feature in (crop_features, target_features, source_features))
        crop_to_target = torch.softmax(f0.transpose(1, 2) @ f2 / self.temperature, dim=2)  # (B, N0, N2)
        target_to_source = torch.softmax(f2.transpose(1, 2) @ f1 / self.temperature, dim=2)  # (B, N2, N1)
        source_map = source_features.shape[-2:]
        centres = cell_centres(source_map, cell_size(image_size, source_map), f1.device)  # (N1, 2)
        return crop_to_target @ (target_to_source @ centres)

    def walk_features(self, outputs: Sequence[Tensor]) -> Tensor:
        """L2-normalised (hyperpixel) features from the outputs of the walk layers."""
        return hyperpixels(outputs)

    def forward(self, backbone: nn.Module, source: Tensor, target: Tensor,
                generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """``loss_cycle`` (weighted) and ``cycle_mse`` (unweighted, detached, pixels^2) of (B, 3, P, P)
        normalised source and target images; gradients flow through every backbone forward."""
        if source.shape != target.shape or source.dim() != 4:
            raise ValueError('CrossInstanceCycle: source and target must be (B, 3, P, P) of one shape, got '
                             f'{tuple(source.shape)} and {tuple(target.shape)}')
        image_size = source.shape[-2:]
        *source_walk, source_attention = layer_outputs(backbone, source, self.walk_layers + [self.attention_layer])
        crops = self.sample_crops(source_attention, image_size, generator)
        crop_walk = layer_outputs(backbone, self.crop(source, crops), self.walk_layers)
        target_walk = layer_outputs(backbone, target, self.walk_layers)
        crop_features = self.walk_features(crop_walk)
        prediction = self.walk(crop_features, self.walk_features(target_walk), self.walk_features(source_walk),
                               image_size)
        mse = F.mse_loss(prediction, self.labels(crops, crop_features.shape[-2:], image_size))
        return dict(loss_cycle=self.loss_weight * mse, cycle_mse=mse.detach())
