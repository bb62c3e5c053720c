"""Tests of LoadRGBImage, TwoViewRandomResizedCrop and PackTwoViewInputs."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed
from PIL import Image
from skimage import data as skimage_data

from sfc_plugin.datasets.transforms import (LoadRGBImage, PackTwoViewInputs,
                                            TwoViewRandomResizedCrop)
from sfc_plugin.utils import ImageReadError


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def box_to_crop(box: np.ndarray, height: int, width: int):
    """(i, j, h, w, flipped) read back from a normalised (x0, y0, x1, y1) box."""
    x0, y0, x1, y1 = (float(value) for value in box)
    left, right = min(x0, x1), max(x0, x1)
    j = int(round(left * (width - 1)))
    i = int(round(y0 * (height - 1)))
    w = int(round(right * (width - 1))) - j + 1
    h = int(round(y1 * (height - 1))) - i + 1
    return i, j, h, w, x0 > x1


@pytest.mark.parametrize('backend', ['cv2', 'pillow', None])
def test_views_equal_resized_crop_of_recorded_box(backend):
    """None: the class default, which must be the official resize (PIL's antialiased bilinear)."""
    height, width, size = 37, 53, 16
    image = noise_image(height, width)
    transform = TwoViewRandomResizedCrop(size=size, flip_prob=0.5,
                                         **({} if backend is None else dict(backend=backend)))
    seen_flipped, seen_unflipped = False, False
    for seed in range(30):
        np.random.seed(seed)
        results = transform(dict(img=image.copy(), img_path='noise.png'))
        assert results['crop_boxes'].dtype == np.float32
        assert results['crop_boxes'].shape == (2, 4)
        for view, box in zip(results['img'], results['crop_boxes']):
            assert view.shape == (size, size, 3) and view.dtype == np.uint8
            i, j, h, w, flipped = box_to_crop(box, height, width)
            assert 0 <= i and i + h <= height and 0 <= j and j + w <= width
            crop = np.ascontiguousarray(image[i:i + h, j:j + w])
            if backend == 'cv2':
                expected = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
            else:
                expected = np.array(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
            if flipped:
                expected = expected[:, ::-1]
                seen_flipped = True
            elif w > 1:
                seen_unflipped = True
            np.testing.assert_array_equal(view, expected)
    assert seen_flipped and seen_unflipped


def test_box_formula_for_a_known_crop():
    # scale (1, 1) and ratio (1, 1) on a square image: the crop is the whole image.
    transform = TwoViewRandomResizedCrop(size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    results = transform(dict(img=noise_image(12, 12)))
    np.testing.assert_array_equal(results['crop_boxes'], [[0, 0, 1, 1], [0, 0, 1, 1]])
    # Flipped always: x0 and x1 swap.
    transform = TwoViewRandomResizedCrop(size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_prob=1.0)
    results = transform(dict(img=noise_image(12, 12)))
    np.testing.assert_array_equal(results['crop_boxes'], [[1, 0, 0, 1], [1, 0, 0, 1]])
    # A 71x71 crop (area 0.5) of a 100x100 image at row i, column j:
    # box (j/99, i/99, (j+70)/99, (i+70)/99).
    transform = TwoViewRandomResizedCrop(size=8, scale=(0.5, 0.5), ratio=(1.0, 1.0))
    np.random.seed(1)
    i, j, h, w = transform.sample_crop(100, 100)
    assert (h, w) == (71, 71) and 0 <= i <= 29 and 0 <= j <= 29
    np.random.seed(1)
    box = transform(dict(img=noise_image(100, 100)))['crop_boxes'][0]
    np.testing.assert_allclose(box, [j / 99, i / 99, (j + 70) / 99, (i + 70) / 99], rtol=1e-6)


def test_fallback_centre_crop():
    # Every try asks for a 14-wide crop of a 10-wide image -> centre crop clipped to ratio 2.
    transform = TwoViewRandomResizedCrop(size=8, scale=(1.0, 1.0), ratio=(2.0, 2.0))
    assert transform.sample_crop(10, 10) == (2, 0, 5, 10)
    # Area 0 rounds to an empty crop every time -> centre crop with the widest allowed ratio 4/3.
    transform = TwoViewRandomResizedCrop(size=8, scale=(0.0, 0.0))
    assert transform.sample_crop(10, 20) == (0, 3, 10, 13)
    # An image within the ratio range falls back to the whole image.
    assert transform.sample_crop(30, 30) == (0, 0, 30, 30)


def test_scale_lower_bound_zero_gives_valid_and_small_crops():
    transform = TwoViewRandomResizedCrop(size=8, scale=(0.0, 1.0))
    np.random.seed(0)
    area_fractions = []
    for _ in range(500):
        i, j, h, w = transform.sample_crop(40, 60)
        assert 1 <= h and 1 <= w and i >= 0 and j >= 0 and i + h <= 40 and j + w <= 60
        area_fractions.append(h * w / (40 * 60))
    assert min(area_fractions) < 0.02
    assert max(area_fractions) > 0.8  # at most 40 * 53 / 2400 = 0.88 with ratio <= 4/3


def test_aspect_ratio_is_log_uniform():
    # Log-uniform in (1/4, 4) is symmetric around 1: about half the crops are wider than tall.
    # (Uniform in (1/4, 4) would make ~80% of them wider.)
    transform = TwoViewRandomResizedCrop(size=8, scale=(0.05, 0.05), ratio=(0.25, 4.0))
    np.random.seed(0)
    crops = [transform.sample_crop(1000, 1000) for _ in range(2000)]
    wider = sum(w > h for _, _, h, w in crops) / len(crops)
    assert 0.45 < wider < 0.55
    assert all(0.25 * 0.98 <= w / h <= 4.0 * 1.02 for _, _, h, w in crops)


def test_boxes_in_unit_square_and_views_independent():
    transform = TwoViewRandomResizedCrop(size=8, flip_prob=0.5)
    np.random.seed(0)
    different = 0
    for _ in range(100):
        boxes = transform(dict(img=noise_image(30, 45)))['crop_boxes']
        assert boxes.min() >= 0.0 and boxes.max() <= 1.0
        assert np.all(boxes[:, 1] <= boxes[:, 3])
        different += not np.array_equal(boxes[0], boxes[1])
    assert different == 100


def test_deterministic_under_mmengine_seed():
    transform = TwoViewRandomResizedCrop(size=8, flip_prob=0.5)
    image = noise_image(30, 45)

    def run(seed):
        set_random_seed(seed)
        return [transform(dict(img=image))['crop_boxes'] for _ in range(5)]

    first, again, other = run(3), run(3), run(4)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


def test_too_small_image_and_bad_arguments():
    with pytest.raises(ValueError, match='thin.png'):
        TwoViewRandomResizedCrop(size=8)(dict(img=noise_image(1, 20), img_path='thin.png'))
    with pytest.raises(ValueError, match='scale'):
        TwoViewRandomResizedCrop(scale=(0.5, 0.2))
    with pytest.raises(ValueError, match='ratio'):
        TwoViewRandomResizedCrop(ratio=(0.0, 1.0))
    with pytest.raises(ValueError, match='flip_prob'):
        TwoViewRandomResizedCrop(flip_prob=1.5)
    with pytest.raises(ValueError, match='area'):
        TwoViewRandomResizedCrop(interpolation='area', backend='pillow')


def test_load_rgb_image(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in cv2's BGR order
    path = str(tmp_path / 'blue.png')
    cv2.imwrite(path, bgr)
    results = LoadRGBImage()(dict(img_path=path))
    assert results['img'].shape == (5, 7, 3) and results['ori_shape'] == (5, 7)
    np.testing.assert_array_equal(results['img'][..., 2], 200)  # blue is last in RGB
    np.testing.assert_array_equal(results['img'][..., :2], 0)
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not a jpeg at all')
    with pytest.raises(ImageReadError, match='corrupt.jpg'):
        LoadRGBImage()(dict(img_path=str(corrupt)))


def test_pack_two_view_inputs():
    np.random.seed(0)
    results = TwoViewRandomResizedCrop(size=12)(dict(img=noise_image(30, 40), img_path='x.png',
                                                     ori_shape=(30, 40)))
    packed = PackTwoViewInputs()(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (2, 3, 12, 12)
    for k in range(2):
        for c in range(3):
            np.testing.assert_array_equal(inputs[k, c].numpy(), results['img'][k][:, :, c])
    assert sample.crop_boxes.dtype == torch.float32 and sample.crop_boxes.shape == (2, 4)
    np.testing.assert_array_equal(sample.crop_boxes.numpy(), results['crop_boxes'])
    assert sample.img_path == 'x.png' and sample.ori_shape == (30, 40)


@pytest.mark.parametrize('prefix', ['', 'sfc_plugin.'])
def test_pipeline_from_config_on_a_photo(tmp_path, prefix):
    path = str(tmp_path / 'astronaut.png')
    cv2.imwrite(path, cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    pipeline_cfg = [
        dict(type=prefix + 'LoadRGBImage'),
        dict(type=prefix + 'TwoViewRandomResizedCrop', size=64),
        dict(type=prefix + 'PackTwoViewInputs'),
    ]
    with DefaultScope.overwrite_default_scope('sfc_plugin' if not prefix else None):
        pipeline = Compose(pipeline_cfg)
    assert [type(t) for t in pipeline.transforms] == [
        LoadRGBImage, TwoViewRandomResizedCrop, PackTwoViewInputs]
    packed = pipeline(dict(img_path=path))
    assert packed['inputs'].shape == (2, 3, 64, 64)
    assert packed['data_samples'].ori_shape == (512, 512)
    boxes = packed['data_samples'].crop_boxes
    assert boxes.min() >= 0 and boxes.max() <= 1
