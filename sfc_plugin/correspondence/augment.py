"""SemiMatch's augmentations of a training pair (Kim et al., CVPR 2022), batched torch.

Images are (B, 3, H, W) float RGB in [0, 1]; keypoints (B, K, 2) pixels (x, y) with 0-based pixel
centres, NaN rows absent; boxes (B, 4) x1, y1, x2, y2 pixels. Every random draw goes through the CPU
``torch.Generator`` passed in (then moves to the images' device), so a seed fixes the result on any
device; decisions are per image (photometric ops) or per keypoint (KeyOut, KeyMix).

Geometric warp W (:class:`AffineTPSWarp`), in normalised coordinates (grid_sample's
``align_corners=False``: ``x_norm = (2 x_pix + 1) / W - 1``, the image spans [-1, 1]):

    A(p) = R(alpha) R(-phi) diag(lambda1, lambda2) R(phi) p + t
    W^-1(p) = TPS(A(p))     (the backward map: output position p samples the input there)

TPS is the thin-plate spline taking the 3 x 3 control grid {-1, 0, 1}^2 to the jittered grid (each
coordinate moved by U(-jitter, jitter)). Output pixels whose sample lies outside [-1, 1]^2 are zero.
Defaults are SemiMatch's: alpha ~ U(+-15 deg), phi ~ U(+-30 deg), lambda ~ U[0.75, 1.25],
t ~ U(+-0.25), jitter 0.4. The warp acts in normalised coordinates, so on a non-square image its
rotation is one of the normalised square (SemiMatch's images are square).

Photometric lists (each op independently with probability ``p`` per image, in list order, as
albumentations' ``Compose`` of ops with ``p=0.2``; parameters are albumentations' defaults):
:data:`WEAK_OPS` for the source and the weak target, :data:`STRONG_OPS` for the strong target; the
additional weak target has none.

KeyOut (:func:`key_out`) blanks a square around picked target keypoints; KeyMix (:func:`key_mix`)
swaps square patches around corresponding keypoints between the source and the strong target. A
square of side L around keypoint (x, y) covers the pixels ``c - (L - 1) // 2 .. c + L // 2`` in each
axis, ``c`` the keypoint rounded to its pixel.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from sfc_plugin.datasets.transforms.colour import LUMA_WEIGHTS

__all__ = ['AffineTPSWarp', 'WEAK_OPS', 'STRONG_OPS', 'photometric', 'weak_photometric', 'strong_photometric',
           'to_gray', 'posterize', 'equalize', 'sharpen', 'brightness_contrast', 'solarize', 'adjust_brightness',
           'adjust_contrast', 'adjust_saturation', 'adjust_hue', 'color_jitter', 'box_blur', 'key_out', 'key_mix']

# the 3 x 3 thin-plate-spline control grid, x varying fastest: (9, 2)
CONTROL_POINTS = torch.stack(torch.meshgrid(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
                                            torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
                                            indexing='xy'), dim=-1).reshape(9, 2)


def _uniform(generator: torch.Generator, shape: Tuple[int, ...], low: float, high: float) -> Tensor:
    """float64 U(low, high) on the CPU."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def _randint(generator: torch.Generator, shape: Tuple[int, ...], low: Union[int, Tensor],
             high: Union[int, Tensor]) -> Tensor:
    """Integers uniform in [low, high] (inclusive; bounds may be tensors broadcast to ``shape``) on the CPU."""
    low, high = torch.as_tensor(low, dtype=torch.float64), torch.as_tensor(high, dtype=torch.float64)
    draw = torch.rand(shape, generator=generator, dtype=torch.float64)
    return torch.minimum(low + torch.floor(draw * (high - low + 1)), high).long()


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'augment.{name}: p must be in [0, 1], got {p!r}')


def _thin_plate_kernel(squared_distance: Tensor) -> Tensor:
    """U(r) = r^2 log r^2 of squared distances (0 at r = 0)."""
    return squared_distance * squared_distance.clamp(min=1e-300).log()


def _fit_thin_plate_spline(control_offsets: Tensor) -> Tensor:
    """Coefficients (B, 12, 2) of the spline taking CONTROL_POINTS to CONTROL_POINTS + offsets (B, 9, 2):
    rows 0-8 the kernel weights, row 9 the constant, rows 10-11 the x and y coefficients."""
    points = CONTROL_POINTS
    kernel = _thin_plate_kernel((points[:, None] - points[None]).pow(2).sum(-1))  # (9, 9)
    affine_basis = torch.cat([torch.ones(9, 1, dtype=torch.float64), points], dim=1)  # (9, 3)
    system = torch.zeros(12, 12, dtype=torch.float64)
    system[:9, :9] = kernel
    system[:9, 9:] = affine_basis
    system[9:, :9] = affine_basis.T
    targets = torch.zeros(control_offsets.shape[0], 12, 2, dtype=torch.float64)
    targets[:, :9] = points + control_offsets
    return torch.linalg.solve(system, targets)


def _rotation(degrees: Tensor) -> Tensor:
    """(B,) angles in degrees -> (B, 2, 2) counter-clockwise rotations (x right, y down: clockwise on screen)."""
    radians = torch.deg2rad(degrees)
    cos, sin = torch.cos(radians), torch.sin(radians)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def _solve_2x2(matrices: Tensor, vectors: Tensor) -> Tensor:
    """(..., 2, 2) M and (..., 2) v -> M^-1 v (NaN where M is singular)."""
    a, b, c, d = matrices[..., 0, 0], matrices[..., 0, 1], matrices[..., 1, 0], matrices[..., 1, 1]
    determinant = a * d - b * c
    determinant = torch.where(determinant == 0, torch.full_like(determinant, math.nan), determinant)
    x, y = vectors[..., 0], vectors[..., 1]
    return torch.stack([(d * x - b * y) / determinant, (a * y - c * x) / determinant], -1)


class AffineTPSWarp:
    """One random affine + thin-plate-spline warp per batch item (module docstring).

    Args:
        affine: (B, 2, 3) the affine map [M | t] of normalised output coordinates.
        control_offsets: (B, 9, 2) the thin-plate spline's control-point displacements (grid order:
            x in -1, 0, 1 fastest, then y); None for none (a pure affine warp).
    """

    def __init__(self, affine: Tensor, control_offsets: Optional[Tensor] = None) -> None:
        if affine.dim() != 3 or affine.shape[1:] != (2, 3):
            raise ValueError(f'AffineTPSWarp: affine must be (B, 2, 3), got {tuple(affine.shape)}')
        batch = affine.shape[0]
        if control_offsets is None:
            control_offsets = torch.zeros(batch, 9, 2, dtype=torch.float64)
        if control_offsets.shape != (batch, 9, 2):
            raise ValueError(f'AffineTPSWarp: control_offsets must be ({batch}, 9, 2), got '
                             f'{tuple(control_offsets.shape)}')
        self.affine = affine.detach().to('cpu', torch.float64)
        self.control_offsets = control_offsets.detach().to('cpu', torch.float64)
        self.spline = _fit_thin_plate_spline(self.control_offsets)  # (B, 12, 2)

    @classmethod
    def from_parameters(cls, rotation: Tensor, scale_angle: Tensor, scales: Tensor, translation: Tensor,
                        control_offsets: Optional[Tensor] = None) -> 'AffineTPSWarp':
        """The warp of SemiMatch's parameters: rotation alpha and scale-axis angle phi (B,) in degrees,
        scales (B, 2) lambda1, lambda2, translation (B, 2) normalised, control offsets (B, 9, 2)."""
        rotation, scale_angle = rotation.double(), scale_angle.double()
        matrix = (_rotation(rotation) @ _rotation(-scale_angle) @ torch.diag_embed(scales.double())
                  @ _rotation(scale_angle))
        return cls(torch.cat([matrix, translation.double()[..., None]], dim=2), control_offsets)

    @classmethod
    def random(cls, batch: int, generator: torch.Generator, max_rotation: float = 15.0,
               max_scale_angle: float = 30.0, scale_range: Tuple[float, float] = (0.75, 1.25),
               max_translation: float = 0.25, tps_jitter: float = 0.4) -> 'AffineTPSWarp':
        """``batch`` warps with SemiMatch's ranges (angles in degrees, translation and jitter normalised)."""
        rotation = _uniform(generator, (batch,), -max_rotation, max_rotation)
        scale_angle = _uniform(generator, (batch,), -max_scale_angle, max_scale_angle)
        scales = _uniform(generator, (batch, 2), *scale_range)
        translation = _uniform(generator, (batch, 2), -max_translation, max_translation)
        control_offsets = _uniform(generator, (batch, 9, 2), -tps_jitter, tps_jitter)
        return cls.from_parameters(rotation, scale_angle, scales, translation, control_offsets)

    @property
    def batch(self) -> int:
        return self.affine.shape[0]

    def _check_points(self, points: Tensor, name: str) -> None:
        if points.dim() != 3 or points.shape[0] != self.batch or points.shape[2] != 2:
            raise ValueError(f'AffineTPSWarp.{name}: points must be ({self.batch}, N, 2), got {tuple(points.shape)}')

    def _spline(self, points: Tensor, jacobian: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """TPS of float64 points (B, N, 2) -> values (B, N, 2) and, if asked, d value / d point (B, N, 2, 2)."""
        spline = self.spline.to(points.device)
        controls = CONTROL_POINTS.to(points.device)
        weights, constant, linear = spline[:, :9], spline[:, 9], spline[:, 10:]  # (B, 9, 2), (B, 2), (B, 2, 2)
        offsets_x = points[..., 0:1] - controls[:, 0]  # (B, N, 9)
        offsets_y = points[..., 1:2] - controls[:, 1]
        squared_distance = offsets_x.pow(2) + offsets_y.pow(2)
        values = _thin_plate_kernel(squared_distance) @ weights + constant[:, None] + points @ linear
        if not jacobian:
            return values, None
        slope = 2 * (squared_distance.clamp(min=1e-300).log() + 1)  # dU/dd * 2, (B, N, 9)
        derivative = torch.stack([(slope * offsets_x) @ weights, (slope * offsets_y) @ weights], dim=-1)
        return values, derivative + linear.transpose(1, 2)[:, None]  # [..., c, d] = d value_c / d point_d

    def backward(self, points: Tensor) -> Tensor:
        """(B, N, 2) normalised output coordinates -> the normalised input coordinates they sample."""
        self._check_points(points, 'backward')
        affine = self.affine.to(points.device)
        moved = points.double() @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]
        return self._spline(moved)[0].to(points.dtype)

    def _backward_and_jacobian(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        """backward of float64 points (B, N, 2) and its Jacobian d input / d output (B, N, 2, 2)."""
        affine = self.affine.to(points.device)
        matrix = affine[:, :, :2]  # (B, 2, 2)
        values, derivative = self._spline(points @ matrix.transpose(1, 2) + affine[:, None, :, 2], jacobian=True)
        return values, derivative @ matrix[:, None]

    def forward(self, points: Tensor, iterations: int = 30, tolerance: float = 1e-10,
                search_steps: int = 33) -> Tensor:
        """(B, N, 2) normalised input coordinates -> the output coordinates that sample them (the inverse of
        :meth:`backward`): Newton's method started from the nearest of ``search_steps`` x ``search_steps``
        output positions; NaN where it does not converge or lands outside [-1, 1]^2. Where the spline
        folds (it can at SemiMatch's jitter) an input point has several preimages; this gives one."""
        self._check_points(points, 'forward')
        targets = points.double()
        steps = torch.linspace(-1, 1, search_steps, dtype=torch.float64, device=points.device)
        candidates = torch.stack(torch.meshgrid(steps, steps, indexing='xy'), -1).reshape(1, -1, 2)
        candidates = candidates.expand(self.batch, -1, -1)  # (B, G, 2)
        nearest = torch.cdist(targets, self.backward(candidates)).argmin(-1)  # (B, N)
        outputs = torch.gather(candidates, 1, nearest[..., None].expand(-1, -1, 2))
        for _ in range(iterations):
            values, derivative = self._backward_and_jacobian(outputs)
            residual = values - targets
            if not (residual.abs() > tolerance).any():  # NaN compares False
                break
            outputs = outputs - _solve_2x2(derivative, residual)
        converged = (self.backward(outputs) - targets).abs().amax(-1) <= 1e-7
        keep = converged & (outputs.abs() <= 1).all(-1)
        return torch.where(keep[..., None], outputs, torch.full_like(outputs, math.nan)).to(points.dtype)

    def grid(self, height: int, width: int, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(B, H, W, 2) the input positions sampled by each output pixel centre (grid_sample's grid)."""
        ys = (2 * torch.arange(height, dtype=torch.float64, device=device) + 1) / height - 1
        xs = (2 * torch.arange(width, dtype=torch.float64, device=device) + 1) / width - 1
        centres = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1).reshape(1, -1, 2)
        return self.backward(centres.expand(self.batch, -1, -1)).reshape(self.batch, height, width, 2)

    def valid(self, height: int, width: int, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(B, 1, H, W) bool: output pixels whose sample lies inside the input."""
        return (self.grid(height, width, device).abs() <= 1).all(-1)[:, None]

    def warp(self, maps: Tensor, mode: str = 'bilinear') -> Tensor:
        """Warp (B, C, H, W) float maps (images: 'bilinear'; masks, correlations over target positions:
        'nearest'); zero where the sample lies outside the input. Samples between the outermost pixel
        centres and the image edge read the edge pixel."""
        if maps.dim() != 4 or maps.shape[0] != self.batch or not maps.is_floating_point():
            raise ValueError(f'AffineTPSWarp.warp: maps must be float ({self.batch}, C, H, W), got '
                             f'{maps.dtype} {tuple(maps.shape)}')
        grid = self.grid(maps.shape[2], maps.shape[3], maps.device)
        inside = (grid.abs() <= 1).all(-1)[:, None]  # (B, 1, H, W)
        warped = F.grid_sample(maps, grid.to(maps.dtype), mode=mode, padding_mode='border', align_corners=False)
        return warped * inside

    def warp_points_px(self, points_px: Tensor, size: Union[int, Tuple[int, int]]) -> Tensor:
        """(B, K, 2) pixel positions (x, y) in the input -> their pixel positions in the output of an image of
        ``size`` (H, W) or S; NaN for absent points and for points that leave the output."""
        height, width = (size, size) if isinstance(size, int) else size
        extent = points_px.new_tensor([width, height]).double()
        normalised = (2 * points_px.double() + 1) / extent - 1
        return (((self.forward(normalised) + 1) * extent - 1) / 2).to(points_px.dtype)


# ---- photometric ops: (B, 3, H, W) in [0, 1] -> the same; per-image parameters are (B,) tensors

def _per_image(values: Tensor, images: Tensor) -> Tensor:
    """(B,) parameters -> (B, 1, 1, 1) on the images' device and dtype."""
    return values.to(images.device, images.dtype).view(-1, 1, 1, 1)


def _levels(images: Tensor) -> Tensor:
    """The 8-bit levels of [0, 1] images (long)."""
    return (images * 255).round().clamp(0, 255).long()


def _luma(images: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) ITU-R 601 luma."""
    weights = torch.as_tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device)
    return torch.einsum('bchw,c->bhw', images, weights)[:, None]


def to_gray(images: Tensor) -> Tensor:
    """Luma in all three channels."""
    return _luma(images).expand_as(images).clone()


def posterize(images: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` (B,) high bits of each 8-bit level: ``level & ~(2^(8 - bits) - 1)``."""
    step = 2 ** (8 - bits.to(images.device).long().view(-1, 1, 1, 1))
    return (_levels(images) // step * step).to(images.dtype) / 255


def equalize(images: Tensor) -> Tensor:
    """Histogram equalisation of each channel's 8-bit levels (cv2.equalizeHist's lookup table:
    ``round(255 (cdf - cdf_min) / (N - cdf_min))``; a constant channel is unchanged)."""
    batch, channels, height, width = images.shape
    levels = _levels(images).reshape(batch * channels, -1)  # (BC, HW)
    histogram = torch.zeros(batch * channels, 256, device=images.device, dtype=torch.float64)
    histogram.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    cdf = histogram.cumsum(1)
    first = torch.where(histogram > 0, cdf, torch.full_like(cdf, math.inf)).amin(1, keepdim=True)  # (BC, 1)
    spread = height * width - first
    table = torch.round((cdf - first).clamp(min=0) * 255 / spread.clamp(min=1))
    identity = torch.arange(256, dtype=torch.float64, device=images.device).expand_as(table)
    table = torch.where(spread > 0, table, identity)
    return (torch.gather(table, 1, levels) / 255).to(images.dtype).reshape(images.shape)


def _reflect_conv(images: Tensor, kernels: Tensor) -> Tensor:
    """Correlate each image with its own (B, k, k) kernel, all channels, borders reflected (cv2's
    BORDER_REFLECT_101)."""
    batch, channels, height, width = images.shape
    size = kernels.shape[-1]
    padded = F.pad(images.reshape(1, batch * channels, height, width), (size // 2,) * 4, mode='reflect')
    weights = kernels.to(images.device, images.dtype).repeat_interleave(channels, dim=0)[:, None]
    return F.conv2d(padded, weights, groups=batch * channels).reshape(images.shape)


def sharpen(images: Tensor, alpha: Tensor, lightness: Tensor) -> Tensor:
    """Albumentations' Sharpen: the 3 x 3 kernel ``(1 - alpha) identity + alpha effect``, effect all -1
    with ``8 + lightness`` at the centre (per-image alpha, lightness (B,)), clipped."""
    identity = torch.zeros(3, 3, dtype=torch.float64)
    identity[1, 1] = 1
    effect = -torch.ones(len(alpha), 3, 3, dtype=torch.float64)
    effect[:, 1, 1] = 8 + lightness.detach().double().cpu()
    alpha = alpha.detach().double().cpu().view(-1, 1, 1)
    return _reflect_conv(images, (1 - alpha) * identity + alpha * effect).clamp(0, 1)


def brightness_contrast(images: Tensor, contrast: Tensor, brightness: Tensor) -> Tensor:
    """Albumentations' RandomBrightnessContrast on [0, 1] images: ``contrast * image + brightness``, clipped."""
    return (images * _per_image(contrast, images) + _per_image(brightness, images)).clamp(0, 1)


def solarize(images: Tensor, threshold: float = 0.5) -> Tensor:
    """Invert (``1 - v``) the values at or above ``threshold``."""
    return torch.where(images >= threshold, 1 - images, images)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """Scale intensities by ``factor`` (B,), clipped."""
    return (images * _per_image(factor, images)).clamp(0, 1)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend with each image's mean luma: ``factor * image + (1 - factor) * mean``, clipped."""
    mean = _luma(images).mean(dim=(1, 2, 3), keepdim=True)
    factor = _per_image(factor, images)
    return (factor * images + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend with the per-pixel luma: ``factor * image + (1 - factor) * luma``, clipped."""
    factor = _per_image(factor, images)
    return (factor * images + (1 - factor) * _luma(images)).clamp(0, 1)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue by ``shift`` (B,) turns."""
    red, green, blue = images.unbind(1)
    value, argmax = images.max(dim=1)
    chroma = value - images.min(dim=1).values
    safe_chroma = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    sextant = torch.where(argmax == 0, (green - blue) / safe_chroma,
                          torch.where(argmax == 1, (blue - red) / safe_chroma + 2, (red - green) / safe_chroma + 4))
    hue = torch.remainder(sextant / 6 + shift.to(images.device, images.dtype).view(-1, 1, 1), 1.0)[:, None]
    saturation = (chroma / torch.where(value > 0, value, torch.ones_like(value)))[:, None]
    value = value[:, None]
    # f(n) = V - V S clamp(min(k, 4 - k), 0, 1), k = (n + 6 H) mod 6, n = 5, 3, 1 for R, G, B
    phases = torch.tensor([5.0, 3.0, 1.0], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    k = torch.remainder(phases + 6 * hue, 6)
    return (value - value * saturation * torch.minimum(k, 4 - k).clamp(0, 1)).clamp(0, 1)


COLOR_ADJUSTMENTS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor,
                 order: Tensor) -> Tensor:
    """Brightness, contrast, saturation factors and hue shift (B,) each, applied per image in ``order``
    (B, 4), a permutation of 0-3 indexing (brightness, contrast, saturation, hue)."""
    factors = (brightness, contrast, saturation, hue)
    order = order.to(images.device)
    for position in range(len(COLOR_ADJUSTMENTS)):
        for index, adjustment in enumerate(COLOR_ADJUSTMENTS):
            chosen = order[:, position] == index
            if chosen.any():
                images = torch.where(chosen.view(-1, 1, 1, 1), adjustment(images, factors[index]), images)
    return images


def box_blur(images: Tensor, kernel_size: Tensor) -> Tensor:
    """Mean over a ``kernel_size`` (B,) odd square window per image, borders reflected (cv2.blur)."""
    blurred = images
    for size in kernel_size.unique().tolist():
        chosen = (kernel_size == size).to(images.device).view(-1, 1, 1, 1)
        box = torch.full((images.shape[0], size, size), 1.0 / size ** 2, dtype=torch.float64)
        blurred = torch.where(chosen, _reflect_conv(images, box), blurred)
    return blurred


# each op: a draw of its per-image parameters (batch, generator) -> kwargs, and the op itself
RandomOp = Tuple[Callable[[int, torch.Generator], Dict[str, Tensor]], Callable[..., Tensor]]


def _draw_color_jitter(batch: int, generator: torch.Generator, strength: float = 0.2) -> Dict[str, Tensor]:
    factors = {name: _uniform(generator, (batch,), max(0.0, 1 - strength), 1 + strength)
               for name in ('brightness', 'contrast', 'saturation')}
    hue = _uniform(generator, (batch,), -strength, strength)
    order = torch.argsort(torch.rand(batch, 4, generator=generator), dim=1)
    return dict(factors, hue=hue, order=order)


def _draw_blur(batch: int, generator: torch.Generator) -> Dict[str, Tensor]:
    return dict(kernel_size=2 * _randint(generator, (batch,), 1, 3) + 1)  # 3, 5, 7


RANDOM_OPS: Dict[str, RandomOp] = {
    'blur': (_draw_blur, box_blur),
    'to_gray': (lambda batch, generator: {}, to_gray),
    'posterize': (lambda batch, generator: dict(bits=_randint(generator, (batch,), 4, 8)), posterize),
    'equalize': (lambda batch, generator: {}, equalize),
    'sharpen': (lambda batch, generator: dict(alpha=_uniform(generator, (batch,), 0.2, 0.5),
                                              lightness=_uniform(generator, (batch,), 0.5, 1.0)), sharpen),
    'brightness_contrast': (lambda batch, generator: dict(contrast=_uniform(generator, (batch,), 0.8, 1.2),
                                                          brightness=_uniform(generator, (batch,), -0.2, 0.2)),
                            brightness_contrast),
    'solarize': (lambda batch, generator: {}, solarize),
    'color_jitter': (_draw_color_jitter, color_jitter),
}
WEAK_OPS = ('to_gray', 'posterize', 'equalize', 'sharpen', 'brightness_contrast', 'solarize', 'color_jitter')
STRONG_OPS = ('blur', 'to_gray', 'posterize', 'equalize', 'brightness_contrast', 'solarize', 'color_jitter')


def _check_images(name: str, images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f'augment.{name}: images must be float (B, 3, H, W) in [0, 1], got {images.dtype} '
                         f'{tuple(images.shape)}')


def photometric(images: Tensor, ops: Sequence[str], generator: torch.Generator, p: float = 0.2) -> Tensor:
    """Apply each op of ``ops`` (names of ``RANDOM_OPS``), in order, to each image with probability ``p``.
    Every op draws its decisions and parameters for the whole batch, applied or not."""
    _check_images('photometric', images)
    _check_prob('photometric', p)
    unknown = [name for name in ops if name not in RANDOM_OPS]
    if unknown:
        raise ValueError(f'augment.photometric: unknown ops {unknown}; known: {sorted(RANDOM_OPS)}')
    batch = images.shape[0]
    for name in ops:
        draw, op = RANDOM_OPS[name]
        applied = torch.rand(batch, generator=generator, dtype=torch.float64) < p
        parameters = draw(batch, generator)
        if applied.any():
            images = torch.where(applied.to(images.device).view(-1, 1, 1, 1), op(images, **parameters), images)
    return images


def weak_photometric(images: Tensor, generator: torch.Generator, p: float = 0.2) -> Tensor:
    """SemiMatch's weak list (source and weak target)."""
    return photometric(images, WEAK_OPS, generator, p)


def strong_photometric(images: Tensor, generator: torch.Generator, p: float = 0.2) -> Tensor:
    """SemiMatch's strong list (strong target)."""
    return photometric(images, STRONG_OPS, generator, p)


# ---- KeyOut and KeyMix

def _pixel(points: Tensor) -> Tensor:
    """Pixel (x, y) each keypoint falls in (long; absent points give garbage, mask them)."""
    return torch.floor(torch.nan_to_num(points, nan=-1e6) + 0.5).clamp(-1e6, 1e6).long()


def key_out(images: Tensor, keypoints_px: Tensor, boxes: Tensor, generator: torch.Generator, p: float = 0.2,
            size_range: Tuple[float, float] = (0.03, 0.1)) -> Tensor:
    """SemiMatch's KeyOut: each present keypoint (B, K, 2) is picked with probability ``p`` and the square of
    integer side uniform in ``[round(lo s), round(hi s)]`` (at least 1) around it is zeroed, s the longer side
    of the image's box (B, 4). Returns a new tensor."""
    _check_images('key_out', images)
    _check_prob('key_out', p)
    batch, points = keypoints_px.shape[:2]
    height, width = images.shape[-2:]
    keypoints_px = keypoints_px.to(images.device)
    box_side = (boxes[:, 2:] - boxes[:, :2]).amax(-1).detach().double().cpu()  # (B,)
    shortest = torch.round(size_range[0] * box_side).clamp(min=1)[:, None].expand(batch, points)
    longest = torch.maximum(torch.round(size_range[1] * box_side)[:, None].expand(batch, points), shortest)
    picked = torch.rand(batch, points, generator=generator, dtype=torch.float64) < p
    sides = _randint(generator, (batch, points), shortest, longest).to(images.device)  # (B, K)
    picked = picked.to(images.device) & ~keypoints_px.isnan().any(-1)
    centres = _pixel(keypoints_px)  # (B, K, 2)
    start = centres - ((sides - 1) // 2)[..., None]  # (B, K, 2) first covered column and row
    end = start + sides[..., None]  # exclusive
    columns = torch.arange(width, device=images.device).view(1, 1, width)
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    blanked = torch.zeros(batch, height, width, dtype=torch.bool, device=images.device)
    for index in range(points):
        in_columns = (columns >= start[:, index, 0].view(-1, 1, 1)) & (columns < end[:, index, 0].view(-1, 1, 1))
        in_rows = (rows >= start[:, index, 1].view(-1, 1, 1)) & (rows < end[:, index, 1].view(-1, 1, 1))
        blanked |= in_columns & in_rows & picked[:, index].view(-1, 1, 1)
    return images.masked_fill(blanked[:, None], 0)


def key_mix(source: Tensor, target: Tensor, src_kps_px: Tensor, trg_kps_px: Tensor, generator: torch.Generator,
            p: float = 0.0, side_range: Tuple[int, int] = (5, 20)) -> Tuple[Tensor, Tensor]:
    """SemiMatch's KeyMix: each pair of present keypoints inside both images is picked with probability ``p``
    and square patches of side uniform in ``side_range`` (pixels, inclusive) around the two keypoints are
    swapped, both cut to the part that fits in both images. Pairs are processed in keypoint order (a later
    swap reads the result of an earlier one). Returns new (source, target)."""
    _check_images('key_mix', source)
    _check_images('key_mix', target)
    _check_prob('key_mix', p)
    if source.shape != target.shape or src_kps_px.shape != trg_kps_px.shape:
        raise ValueError(f'augment.key_mix: source and target (and their keypoints) must have one shape, got '
                         f'{tuple(source.shape)}, {tuple(target.shape)}, {tuple(src_kps_px.shape)}, '
                         f'{tuple(trg_kps_px.shape)}')
    batch, points = src_kps_px.shape[:2]
    picked = torch.rand(batch, points, generator=generator, dtype=torch.float64) < p
    sides = _randint(generator, (batch, points), side_range[0], side_range[1])
    source, target = source.clone(), target.clone()
    if not picked.any():
        return source, target
    height, width = source.shape[-2:]
    limits = torch.tensor([width - 1, height - 1])
    src_centres, trg_centres = _pixel(src_kps_px.detach().cpu()), _pixel(trg_kps_px.detach().cpu())
    inside = ((src_centres >= 0) & (src_centres <= limits) & (trg_centres >= 0) & (trg_centres <= limits)).all(-1)
    for b, k in (picked & inside).nonzero().tolist():
        side = int(sides[b, k])
        (sx, sy), (tx, ty) = src_centres[b, k].tolist(), trg_centres[b, k].tolist()
        left = min((side - 1) // 2, sx, tx)
        right = min(side // 2, width - 1 - sx, width - 1 - tx)
        top = min((side - 1) // 2, sy, ty)
        bottom = min(side // 2, height - 1 - sy, height - 1 - ty)
        source_patch = source[b, :, sy - top:sy + bottom + 1, sx - left:sx + right + 1].clone()
        source[b, :, sy - top:sy + bottom + 1, sx - left:sx + right + 1] = \
            target[b, :, ty - top:ty + bottom + 1, tx - left:tx + right + 1]
        target[b, :, ty - top:ty + bottom + 1, tx - left:tx + right + 1] = source_patch
    return source, target
