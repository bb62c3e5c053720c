"""Per-view photometric augmentations of MoCo (He et al. 2020; Chen et al. 2020), in numpy/cv2.

Each transform acts on ``results['img']``: one (H, W, 3) uint8 RGB image or a list of them (the
views of ``TwoViewRandomResizedCrop``), and draws its random parameters independently for every
view from numpy's global generator (which mmengine seeds in the main process and in every
dataloader worker). Put after ``TwoViewRandomResizedCrop``, they give MoCo's recipes:

- MoCo v1: crop (scale 0.2-1) and flip, ``ViewsRandomGrayscale(prob=0.2)``, then
  ``ViewsColorJitter(0.4, 0.4, 0.4, 0.4, prob=1.0)``;
- MoCo v2: crop and flip, ``ViewsColorJitter(0.4, 0.4, 0.4, 0.1, prob=0.8)``,
  ``ViewsRandomGrayscale(prob=0.2)``, ``ViewsGaussianBlur(sigma=(0.1, 2.0), prob=0.5)``.

(The flip commutes with these operations, so drawing it with the crop changes nothing.)
``configs/_base_/datasets/moco_v1_imagenet.py`` and ``moco_v2_imagenet.py`` hold both lists.
"""
from typing import Callable, Dict, List, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from sfc_plugin.registry import TRANSFORMS

# ITU-R 601-2 luma weights (PIL's "L" conversion, torchvision's rgb_to_grayscale)
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) float32 luma."""
    return image.astype(np.float32) @ LUMA_WEIGHTS


def _map_views(results: Dict, function: Callable[[np.ndarray], np.ndarray]) -> Dict:
    """Apply ``function`` to the image or to each view of ``results['img']``."""
    images = results['img']
    if isinstance(images, np.ndarray):
        results['img'] = function(images)
    else:
        results['img'] = [function(image) for image in images]
    return results


def _check_prob(prob: float) -> float:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'prob must be in [0, 1], got {prob!r}')
    return float(prob)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale intensities by ``factor`` (float (H, W, 3) on 0..255, clipped)."""
    return np.clip(image * factor, 0, 255)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean luma: ``factor * image + (1 - factor) * mean``."""
    mean = float(luma(image).mean())
    return np.clip(factor * image + (1 - factor) * mean, 0, 255)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's own grey version: ``factor * image + (1 - factor) * luma``."""
    return np.clip(factor * image + (1 - factor) * luma(image)[..., None], 0, 255)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5]) in HSV space."""
    hsv = cv2.cvtColor((image / 255).astype(np.float32), cv2.COLOR_RGB2HSV)  # H in degrees [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift * 360.0, 360.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255, 0, 255)


@TRANSFORMS.register_module()
class ViewsColorJitter(BaseTransform):
    """Random brightness, contrast, saturation and hue, as torchvision's ``ColorJitter``.

    With probability ``prob`` per view: factors b, c, s uniform in ``[max(0, 1 - x), 1 + x]`` for
    x = ``brightness``, ``contrast``, ``saturation``, a hue shift uniform in ``[-hue, hue]``
    turns, applied in a random order. Brightness scales intensities; contrast blends with the
    mean luma; saturation blends with the per-pixel luma; hue rotates the HSV hue. Intermediate
    results stay float (clipped to 0..255) and are rounded once at the end.

    Args:
        brightness, contrast, saturation: jitter strengths (>= 0); 0 disables one.
        hue: hue jitter in turns, in [0, 0.5].
        prob: probability of jittering a view at all (MoCo v2's ``RandomApply`` p=0.8).
    """

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, prob: float = 1.0) -> None:
        for name, value in dict(brightness=brightness, contrast=contrast, saturation=saturation).items():
            if value < 0:
                raise ValueError(f'{name} must be >= 0, got {value!r}')
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5], got {hue!r}')
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.prob = _check_prob(prob)

    @staticmethod
    def _factor(strength: float) -> float:
        return float(np.random.uniform(max(0.0, 1 - strength), 1 + strength))

    def jitter(self, image: np.ndarray) -> np.ndarray:
        """One view: jittered with probability ``prob``, else unchanged."""
        if np.random.rand() >= self.prob:
            return image
        factors = (self._factor(self.brightness), self._factor(self.contrast),
                   self._factor(self.saturation), float(np.random.uniform(-self.hue, self.hue)))
        adjustments = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        jittered = image.astype(np.float32)
        for index in np.random.permutation(len(adjustments)):
            jittered = adjustments[index](jittered, factors[index])
        return np.round(jittered).astype(np.uint8)

    def transform(self, results: Dict) -> Dict:
        return _map_views(results, self.jitter)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness={self.brightness}, contrast={self.contrast}, '
                f'saturation={self.saturation}, hue={self.hue}, prob={self.prob})')


@TRANSFORMS.register_module()
class ViewsRandomGrayscale(BaseTransform):
    """With probability ``prob`` per view, replace RGB by its luma in all three channels."""

    def __init__(self, prob: float = 0.2) -> None:
        self.prob = _check_prob(prob)

    def gray(self, image: np.ndarray) -> np.ndarray:
        if np.random.rand() >= self.prob:
            return image
        grey = np.round(luma(image)).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)

    def transform(self, results: Dict) -> Dict:
        return _map_views(results, self.gray)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class ViewsGaussianBlur(BaseTransform):
    """With probability ``prob`` per view, a Gaussian blur of standard deviation uniform in
    ``sigma`` pixels (MoCo v2: (0.1, 2.0) at 224 px; scale it with the view size). The kernel
    spans about +-3 sigma; borders replicate the edge pixels."""

    def __init__(self, sigma: Sequence[float] = (0.1, 2.0), prob: float = 0.5) -> None:
        if len(sigma) != 2 or not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f'sigma must be (min, max) with 0 < min <= max, got {sigma!r}')
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.prob = _check_prob(prob)

    def blur(self, image: np.ndarray) -> np.ndarray:
        if np.random.rand() >= self.prob:
            return image
        sigma = float(np.random.uniform(*self.sigma))
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)

    def transform(self, results: Dict) -> Dict:
        return _map_views(results, self.blur)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(sigma={self.sigma}, prob={self.prob})'


def moco_view_pipeline(version: str, size: int = 224,
                       blur_sigma: Sequence[float] = (0.1, 2.0)) -> List[dict]:
    """The view transforms of MoCo ``'v1'`` or ``'v2'`` as config dicts, from the crop on (put
    ``LoadRGBImage`` before and ``PackTwoViewInputs`` after)."""
    crop = dict(type='TwoViewRandomResizedCrop', size=size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                flip_prob=0.5, backend='pillow')
    if version == 'v1':
        return [crop, dict(type='ViewsRandomGrayscale', prob=0.2),
                dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.4, prob=1.0)]
    if version == 'v2':
        return [crop,
                dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
                dict(type='ViewsRandomGrayscale', prob=0.2),
                dict(type='ViewsGaussianBlur', sigma=tuple(blur_sigma), prob=0.5)]
    raise ValueError(f"MoCo version must be 'v1' or 'v2', got {version!r}")
