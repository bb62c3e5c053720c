"""Two independent random resized crops of one image, with each crop's box in the original image.

This is the view generation of FC training (docs/method.md section 2, PixPro's ``RandomResizedCropCoord``
and ``RandomHorizontalFlipCoord``): the boxes let the loss map every feature cell of either view
back to the original image and pair cells that look at the same place.
"""
import math
from typing import Dict, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes, pillow_interp_codes
from mmcv.transforms import BaseTransform

from sfc_plugin.registry import TRANSFORMS

_INTERPOLATIONS = dict(cv2=cv2_interp_codes, pillow=pillow_interp_codes)


@TRANSFORMS.register_module()
class TwoViewRandomResizedCrop(BaseTransform):
    """Cut two independent random resized crops (views) from ``results['img']``.

    Each view is drawn like torchvision's ``RandomResizedCrop.get_params``: up to 10 tries of an
    area fraction uniform in ``scale`` and an aspect ratio log-uniform in ``ratio``, accepted when
    the rounded crop fits in the image; otherwise a centre crop clipped to ``ratio``. The crop is
    resized to ``size`` x ``size`` and, with probability ``flip_prob`` per view, mirrored
    left-right.

    The box of a crop at column j, row i, of width w and height h in an H x W image is recorded in
    normalised coordinates of the original image, exactly as PixPro/SFC do:
    ``(x0, y0, x1, y1) = (j / (W-1), i / (H-1), (j+w-1) / (W-1), (i+h-1) / (H-1))``.
    A flipped view has x0 and x1 swapped, so ``x0 > x1`` means flipped.

    Randomness comes from numpy's global generator, which mmengine seeds
    (``randomness=dict(seed=...)``) in the main process and in every dataloader worker.

    Args:
        size: Side of the square output views.
        scale: Range of the crop area as a fraction of the image area. The FC reference uses
            (0.0, 1.0); a draw that rounds to an empty crop is simply retried.
        ratio: Range of the crop aspect ratio (width / height).
        flip_prob: Probability of a horizontal flip, drawn independently for each view.
        interpolation: Resize interpolation: 'nearest', 'bilinear', 'bicubic', plus 'area' for
            the cv2 backend or 'box' for the pillow one.
        backend: 'pillow' (default) or 'cv2'. Pillow's bilinear filter widens with the
            downscale factor (antialiased), as torchvision's PIL path in the reference FC training
            code does; cv2's bilinear samples the 2x2 nearest source pixels only (faster, not
            the official resize).

    Adds or replaces: ``img`` -> [view1, view2], each (size, size, 3) uint8; ``img_shape`` ->
    (size, size); ``crop_boxes`` -> (2, 4) float32, one (x0, y0, x1, y1) row per view.
    """

    def __init__(self,
                 size: int = 256,
                 scale: Sequence[float] = (0.0, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 flip_prob: float = 0.0,
                 interpolation: str = 'bilinear',
                 backend: str = 'pillow') -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f'size must be a positive int, got {size!r}')
        if len(scale) != 2 or not 0.0 <= scale[0] <= scale[1]:
            raise ValueError(f'scale must be (min, max) with 0 <= min <= max, got {scale!r}')
        if len(ratio) != 2 or not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio must be (min, max) with 0 < min <= max, got {ratio!r}')
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob!r}')
        if backend not in _INTERPOLATIONS:
            raise ValueError(f'backend must be one of {sorted(_INTERPOLATIONS)}, got {backend!r}')
        if interpolation not in _INTERPOLATIONS[backend]:
            raise ValueError(f'interpolation {interpolation!r} is not available with the {backend} '
                             f'backend; choose from {sorted(_INTERPOLATIONS[backend])}')
        self.size = size
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip_prob = flip_prob
        self.interpolation = interpolation
        self.backend = backend

    def sample_crop(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw one crop (i, j, h, w): top row, left column, height, width (torchvision's rule)."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * np.random.uniform(self.scale[0], self.scale[1])
            aspect_ratio = math.exp(np.random.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                i = int(np.random.randint(0, height - h + 1))
                j = int(np.random.randint(0, width - w + 1))
                return i, j, h, w
        # Fallback: the largest centre crop whose aspect ratio lies within `ratio`.
        image_ratio = width / height
        if image_ratio < self.ratio[0]:
            w = width
            h = int(round(w / self.ratio[0]))
        elif image_ratio > self.ratio[1]:
            h = height
            w = int(round(h * self.ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def _make_view(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """One resized (and maybe flipped) crop of ``image`` and its box (4,) in the original."""
        height, width = image.shape[:2]
        i, j, h, w = self.sample_crop(height, width)
        view = mmcv.imresize(image[i:i + h, j:j + w], (self.size, self.size),
                             interpolation=self.interpolation, backend=self.backend)
        box = np.array([j / (width - 1), i / (height - 1),
                        (j + w - 1) / (width - 1), (i + h - 1) / (height - 1)], np.float32)
        if np.random.rand() < self.flip_prob:
            view = np.ascontiguousarray(view[:, ::-1])
            box = box[[2, 1, 0, 3]]
        return view, box

    def transform(self, results: Dict) -> Dict:
        image = results['img']
        height, width = image.shape[:2]
        if height < 2 or width < 2:
            raise ValueError(f'{results.get("img_path", "image")}: {height}x{width} pixels; crop '
                             'boxes are normalised by (W-1, H-1), so both sides must be >= 2')
        view1, box1 = self._make_view(image)
        view2, box2 = self._make_view(image)
        results['img'] = [view1, view2]
        results['img_shape'] = (self.size, self.size)
        results['crop_boxes'] = np.stack([box1, box2])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, flip_prob={self.flip_prob}, '
                f'interpolation={self.interpolation!r}, backend={self.backend!r})')
