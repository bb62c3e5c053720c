"""MoCo view augmentations: colour operations against hand-computed values, probability extremes,
the v1 / v2 recipes end to end (shapes, dtypes, seeding) and the config lists that hold them."""
import math
import os

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import DefaultScope

from conftest import REPO_ROOT
from sfc_plugin.datasets.transforms import (TwoViewRandomResizedCrop, ViewsColorJitter, ViewsGaussianBlur,
                                            ViewsRandomGrayscale, moco_view_pipeline)
from sfc_plugin.datasets.transforms.colour import (adjust_brightness, adjust_contrast, adjust_hue,
                                                   adjust_saturation)
from sfc_plugin.registry import SCOPE


def colourful(seed: int = 0, size: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_colour_operations_on_hand_computed_pixels():
    red = np.array([[[255.0, 0.0, 0.0]]], np.float32)
    grey_red = 0.299 * 255
    assert np.allclose(adjust_saturation(red, 0.0), grey_red)  # no saturation: the luma
    assert np.allclose(adjust_saturation(red, 0.5), [0.5 * 255 + 0.5 * grey_red, 0.5 * grey_red, 0.5 * grey_red])
    assert np.allclose(adjust_brightness(red + 100, 2.0), [255, 200, 200])  # clipped at 255
    two = np.array([[[0.0, 0.0, 0.0], [100.0, 100.0, 100.0]]], np.float32)
    assert np.allclose(adjust_contrast(two, 0.0), 50.0)  # all pixels become the mean luma
    assert np.allclose(adjust_contrast(two, 1.5), [[[0, 0, 0], [125, 125, 125]]])  # 1.5 * x - 25, clipped
    assert np.allclose(adjust_hue(red, 1 / 3), [0, 255, 0], atol=1e-3)  # red -> green
    assert np.allclose(adjust_hue(red, 0.5), [0, 255, 255], atol=1e-3)  # red -> cyan
    assert np.allclose(adjust_hue(red, -1 / 3), [0, 0, 255], atol=1e-3)  # red -> blue


def test_probability_extremes():
    views = [colourful(0), colourful(1)]
    results = ViewsRandomGrayscale(prob=1.0)(dict(img=list(views)))
    for view, grey in zip(views, results['img']):
        expected = np.round(view.astype(np.float64) @ [0.299, 0.587, 0.114])
        assert grey.dtype == np.uint8 and grey.shape == view.shape
        assert np.abs(grey[..., 0].astype(int) - expected).max() <= 1
        assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    for transform in (ViewsRandomGrayscale(prob=0.0), ViewsColorJitter(prob=0.0), ViewsGaussianBlur(prob=0.0)):
        unchanged = transform(dict(img=list(views)))['img']
        assert all(np.array_equal(a, b) for a, b in zip(views, unchanged)), transform
    # a single image works as well as a list of views
    assert ViewsRandomGrayscale(prob=1.0)(dict(img=views[0]))['img'].shape == views[0].shape

    # flip with probability 1 on a full-image crop: both views are the mirror image
    image = colourful(2, size=16)
    crop = TwoViewRandomResizedCrop(size=16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_prob=1.0)
    assert all(np.array_equal(view, image[:, ::-1]) for view in crop(dict(img=image))['img'])


def test_gaussian_blur_of_an_impulse():
    image = np.zeros((21, 21, 3), np.uint8)
    image[10, 10] = 255
    sigma = 1.5
    blurred = ViewsGaussianBlur(sigma=(sigma, sigma), prob=1.0)(dict(img=image))['img'].astype(float)
    # 2-D Gaussian of unit mass: 255 / (2 pi sigma^2) at the centre, exp(-1/(2 sigma^2)) less one pixel away
    centre = 255 / (2 * math.pi * sigma ** 2)
    assert abs(blurred[10, 10, 0] - centre) <= 1.0
    assert abs(blurred[10, 11, 1] - centre * math.exp(-1 / (2 * sigma ** 2))) <= 1.0
    assert abs(blurred.sum() / 3 - 255) <= 12  # mass kept up to the uint8 rounding of ~50 pixels


def test_colour_jitter_draws_per_view_and_follows_the_seed():
    views = [colourful(3), colourful(3)]  # two identical views
    jitter = ViewsColorJitter(0.4, 0.4, 0.4, 0.1, prob=1.0)
    np.random.seed(0)
    first = jitter(dict(img=list(views)))['img']
    assert first[0].dtype == np.uint8 and first[0].shape == views[0].shape
    assert not np.array_equal(first[0], first[1])  # independent parameters per view
    np.random.seed(0)
    again = jitter(dict(img=list(views)))['img']
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # brightness alone: every channel scaled by one factor in [0.6, 1.4]
    bright = ViewsColorJitter(brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0, prob=1.0)
    flat = np.full((4, 4, 3), 100, np.uint8)
    out = bright(dict(img=flat))['img']
    assert len(np.unique(out)) == 1 and 60 <= int(out[0, 0, 0]) <= 140
    with pytest.raises(ValueError, match='hue'):
        ViewsColorJitter(hue=0.7)


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_moco_pipeline_end_to_end(version, real_image_dir):
    pipeline = [dict(type='LoadRGBImage')] + moco_view_pipeline(version, size=32) + [dict(type='PackTwoViewInputs')]
    with DefaultScope.overwrite_default_scope(SCOPE):
        transform = Compose(pipeline)
    photo = os.path.join(real_image_dir, 'astronaut.jpg')
    np.random.seed(1)
    packed = transform(dict(img_path=photo))
    np.random.seed(1)
    again = transform(dict(img_path=photo))
    np.random.seed(2)
    other = transform(dict(img_path=photo))
    inputs = packed['inputs']
    assert inputs.dtype == torch.uint8 and inputs.shape == (2, 3, 32, 32)
    assert torch.equal(inputs, again['inputs']) and not torch.equal(inputs, other['inputs'])
    assert not torch.equal(inputs[0], inputs[1])
    assert packed['data_samples'].crop_boxes.shape == (2, 4)


def test_config_lists_are_the_recipes():
    for version in ('v1', 'v2'):
        cfg = Config.fromfile(os.path.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'moco_{version}_imagenet.py'))
        pipeline = cfg.train_dataloader.dataset.pipeline
        assert pipeline[0] == dict(type='LoadRGBImage') and pipeline[-1] == dict(type='PackTwoViewInputs')
        assert [dict(step) for step in pipeline[1:-1]] == moco_view_pipeline(version, size=224)
    with pytest.raises(ValueError, match='v1'):
        moco_view_pipeline('v3')
