"""Shared fixtures: real photos from scikit-image written as an image folder."""
import os
import sys

import cv2
import numpy as np
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

REAL_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'cat', 'camera', 'coins', 'moon',
               'hubble_deep_field', 'immunohistochemistry', 'page', 'text')


def write_real_photos(folder: str, max_side: int = 160) -> list:
    """Write scikit-image's real photos (downscaled) as JPEGs into ``folder``; return the paths."""
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in REAL_PHOTOS:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        image = image[..., :3].astype(np.uint8)
        scale = max_side / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        path = os.path.join(folder, f'{name}.jpg')
        cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


@pytest.fixture(scope='session')
def real_image_dir(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp('real_photos'))
    write_real_photos(folder)
    return folder
