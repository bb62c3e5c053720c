"""Guided upsampling of the predicted labels: the guided filter's fits against a per-window computation, off by
default (bilinear, the reference), and what it is for: an edge blurred over a feature cell lands on the frame's
edge."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.propagation import MaskCodec, PropagationSettings, mask_to_soft_labels, soft_labels_to_ids
from sfc_plugin.propagation.upsampling import fit_grid, guided_coefficients, upsample_labels


def coefficients_by_windows(image: np.ndarray, src: np.ndarray, radius: int, eps: float):
    """He et al.'s guided filter written out in float64: for each window (clipped at the borders) the ridge
    regression of each channel of ``src`` on the window's RGB; each pixel's (K, 3) slopes and (K,) offsets are the
    means of the fits of the windows that cover it."""
    _, height, width = image.shape
    channels = src.shape[0]
    a = np.zeros((height, width, channels, 3))
    b = np.zeros((height, width, channels))

    def window(y, x):
        return slice(max(y - radius, 0), y + radius + 1), slice(max(x - radius, 0), x + radius + 1)

    for y in range(height):
        for x in range(width):
            rows, cols = window(y, x)
            colours = image[:, rows, cols].reshape(3, -1)  # (3, n)
            labels = src[:, rows, cols].reshape(channels, -1)  # (K, n)
            mean_i, mean_p = colours.mean(1), labels.mean(1)
            covariance = (colours - mean_i[:, None]) @ (colours - mean_i[:, None]).T / colours.shape[1]
            cross = (labels - mean_p[:, None]) @ (colours - mean_i[:, None]).T / colours.shape[1]  # (K, 3)
            a[y, x] = np.linalg.solve(covariance + eps * np.eye(3), cross.T).T
            b[y, x] = mean_p - a[y, x] @ mean_i
    mean_a, mean_b = np.zeros_like(a), np.zeros_like(b)
    for y in range(height):
        for x in range(width):
            rows, cols = window(y, x)
            mean_a[y, x] = a[rows, cols].reshape(-1, channels, 3).mean(0)
            mean_b[y, x] = b[rows, cols].reshape(-1, channels).mean(0)
    return mean_a, mean_b


@pytest.mark.parametrize('radius, eps', [(1, 1e-2), (2, 1e-4)])
def test_guided_coefficients_match_a_per_window_computation(radius, eps):
    generator = torch.Generator().manual_seed(radius)
    image = torch.rand(3, 9, 11, generator=generator)
    src = torch.rand(2, 9, 11, generator=generator)
    slopes, offsets = guided_coefficients(image[None], src[None], radius, eps)  # (1, 3, K, H, W), (1, K, H, W)
    mean_a, mean_b = coefficients_by_windows(image.double().numpy(), src.double().numpy(), radius, eps)
    np.testing.assert_allclose(slopes[0].permute(2, 3, 1, 0).numpy(), mean_a, atol=2e-3)
    np.testing.assert_allclose(offsets[0].permute(1, 2, 0).numpy(), mean_b, atol=2e-4)


def test_guided_upsampling_fits_on_a_grid_twice_as_fine_as_the_labels():
    """The fast guided filter: the frame averaged over 3 x 4 pixel blocks onto the (8, 10) fit grid, the labels
    bilinear to it, window-mean fits of radius 2 grid cells (guide_radius 1), bilinear to the frame, applied to
    each pixel's colour."""
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(3, 24, 40, generator=generator)
    soft = torch.rand(3, 4, 5, generator=generator).softmax(0)
    assert fit_grid((4, 5), (24, 40)) == (8, 10) and fit_grid((4, 5), (6, 40)) == (6, 10)
    blocks = image.double().numpy().reshape(3, 8, 3, 10, 4).mean((2, 4))
    labels = torch.nn.functional.interpolate(soft[None].double(), size=(8, 10), mode='bilinear', align_corners=False)
    mean_a, mean_b = coefficients_by_windows(blocks, labels[0].numpy(), 2, 1e-3)
    coefficients = torch.from_numpy(np.concatenate([mean_a.reshape(8, 10, -1), mean_b], 2)).permute(2, 0, 1)
    coefficients = F.interpolate(coefficients[None], size=(24, 40), mode='bilinear', align_corners=False)[0]
    slopes, offsets = coefficients[:9].view(3, 3, 24, 40), coefficients[9:]  # slopes (K, 3, H, W)
    expected = (slopes * image.double()[None]).sum(1) + offsets
    got = upsample_labels(soft, (24, 40), image, guide_radius=1.0, guide_eps=1e-3)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=2e-4)


def test_off_by_default_the_labels_upsample_bilinearly():
    settings = PropagationSettings()
    assert settings.guide_radius == 0 and settings.protocol()['guide_radius'] == 0
    soft = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    bilinear = F.interpolate(soft[None], size=(40, 56), mode='bilinear', align_corners=False)[0]
    assert torch.equal(upsample_labels(soft, (40, 56)), bilinear)
    codec = MaskCodec([0, 1, 2], (40, 56)).with_guide(settings)
    assert not codec.guided
    assert torch.equal(codec.decode(soft), torch.tensor([0, 1, 2])[bilinear.argmax(0)])


def test_settings_and_refusals():
    assert PropagationSettings(guide_radius=1.0, guide_eps=1e-3).protocol()['guide_eps'] == 1e-3
    with pytest.raises(ValueError, match='guide_radius must be >= 0'):
        PropagationSettings(guide_radius=-1)
    with pytest.raises(ValueError, match='guide_eps must be positive'):
        PropagationSettings(guide_eps=0)
    codec = MaskCodec([0, 1], (16, 16)).with_guide(PropagationSettings(guide_radius=1.0))
    with pytest.raises(ValueError, match=r'needs the frame as \(3, 16, 16\) RGB, got None'):
        codec.decode(torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match=r'got \(3, 8, 16\)'):
        codec.decode(torch.rand(2, 2, 2), torch.rand(3, 8, 16))


def test_an_edge_blurred_over_a_cell_lands_on_the_frames_edge():
    """A bright square whose sides fall between the cells of a stride-8 map: bilinear upsampling of its soft
    labels rounds its corners and misses its sides by pixels; guided by the frame, its sides are exact and only
    its corners stay a little rounded."""
    height, width = 64, 80
    truth = np.zeros((height, width), np.int64)
    truth[13:45, 21:59] = 1
    image = torch.full((3, height, width), 0.2)
    image[:, torch.from_numpy(truth == 1)] = torch.tensor([0.9, 0.7, 0.3])[:, None]
    soft = mask_to_soft_labels(truth, [0, 1], (height // 8, width // 8))
    bilinear = soft_labels_to_ids(soft, (height, width), [0, 1]).numpy()
    guided = soft_labels_to_ids(soft, (height, width), [0, 1], image, guide_radius=1.0).numpy()
    rows, cols = np.mgrid[:height, :width]
    near_corner = np.zeros_like(truth, bool)  # within a cell (8 pixels) of a corner
    for row in (13, 44):
        for col in (21, 58):
            near_corner |= (abs(rows - row) < 8) & (abs(cols - col) < 8)
    assert (bilinear != truth)[~near_corner].sum() > 100
    assert not (guided != truth)[~near_corner].any()
    assert (guided != truth).sum() < (bilinear != truth).sum() / 5
