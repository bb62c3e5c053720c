"""Label maps <-> soft labels at feature resolution."""
import math

import numpy as np
import pytest
import torch

from sfc_plugin.propagation import (PropagationSettings, feature_size, label_values_of, mask_to_soft_labels,
                                    soft_labels_to_ids)
from sfc_plugin.propagation.labels import DILUTED_PEAK, lift_diluted_objects


def bilinear_by_loops(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize with align_corners=False, one output pixel at a time: source coordinate
    (i + 0.5) * in / out - 0.5, clamped at 0, interpolating the two neighbours per axis."""

    def taps(i, size_in, size_out):
        src = max((i + 0.5) * size_in / size_out - 0.5, 0.0)
        low = min(int(math.floor(src)), size_in - 1)
        high = min(low + 1, size_in - 1)
        return low, high, src - low

    out = np.zeros((image.shape[0], out_h, out_w))
    for y in range(out_h):
        y0, y1, fy = taps(y, image.shape[1], out_h)
        for x in range(out_w):
            x0, x1, fx = taps(x, image.shape[2], out_w)
            out[:, y, x] = ((1 - fy) * ((1 - fx) * image[:, y0, x0] + fx * image[:, y0, x1])
                            + fy * ((1 - fx) * image[:, y1, x0] + fx * image[:, y1, x1]))
    return out


def test_feature_size_is_ceil_of_stride_8():
    assert feature_size((480, 854)) == (60, 107)
    assert feature_size((320, 320)) == (40, 40)


def test_downsampling_matches_an_independent_bilinear_resize():
    rng = np.random.default_rng(0)
    ids = rng.choice([0, 3, 7], size=(20, 27))
    soft = mask_to_soft_labels(ids, [0, 3, 7], feature_size(ids.shape))
    one_hot = np.stack([ids == v for v in (0, 3, 7)]).astype(np.float64)
    expected = bilinear_by_loops(one_hot, 3, 4)
    assert soft.shape == (3, 3, 4) and soft.dtype == torch.float32
    assert np.allclose(soft.numpy(), expected, atol=1e-6)
    assert torch.allclose(soft.sum(0), torch.ones(3, 4))


def test_upsampling_matches_an_independent_bilinear_resize():
    soft = torch.softmax(torch.randn(3, 3, 4, generator=torch.Generator().manual_seed(1)), 0)
    ids = soft_labels_to_ids(soft, (20, 27), [0, 3, 7])
    expected = np.array([0, 3, 7])[bilinear_by_loops(soft.double().numpy(), 20, 27).argmax(0)]
    assert ids.shape == (20, 27) and np.array_equal(ids.numpy(), expected)


def test_cells_inside_a_uniform_region_are_one_hot():
    ids = np.zeros((64, 64), np.uint8)
    ids[8:40, 16:56] = 2
    soft = mask_to_soft_labels(ids, [0, 2], (8, 8))
    assert torch.equal(soft[:, 2:4, 3:6], torch.tensor([0., 1.])[:, None, None].expand(2, 2, 3))
    assert torch.equal(soft[:, 6:, :], torch.tensor([1., 0.])[:, None, None].expand(2, 2, 8))


@pytest.mark.parametrize('pattern', ['rows', 'columns', 'checkerboard'])
def test_blocky_masks_round_trip(pattern):
    """Masks made of 8-pixel-aligned blocks come back exactly from mask -> soft -> ids."""
    cells = np.indices((6, 9))
    if pattern == 'rows':
        block_ids = np.array([0, 5, 5, 9, 0, 9])[cells[0]]
    elif pattern == 'columns':
        block_ids = np.array([1, 1, 4, 0, 4, 4, 1, 0, 0])[cells[1]]
    else:
        block_ids = np.where((cells[0] + cells[1]) % 2, 3, 0)
    ids = np.kron(block_ids, np.ones((8, 8), np.int64))  # (48, 72)
    values = label_values_of([ids])
    soft = mask_to_soft_labels(torch.from_numpy(ids), values, feature_size(ids.shape))
    assert np.array_equal(soft_labels_to_ids(soft, ids.shape, values).numpy(), ids)


def test_unknown_label_values_are_rejected():
    with pytest.raises(ValueError, match=r'\[4\]'):
        mask_to_soft_labels(np.array([[0, 4], [1, 1]]), [0, 1], (1, 1))
    with pytest.raises(ValueError, match='label values'):
        soft_labels_to_ids(torch.zeros(2, 3, 3), (24, 24), [0, 1, 2])


def lift_by_hand(soft: np.ndarray, max_gain: float) -> np.ndarray:
    """The dilution gain written out: per object a gain from its peak, then each cell divided by its total."""
    gains = [1.0]
    for k in range(1, soft.shape[0]):
        peak = float(soft[k].max())
        gains.append(min(1.0 / peak, max_gain) if DILUTED_PEAK <= peak < 1.0 else 1.0)
    out = np.empty_like(soft)
    for y in range(soft.shape[1]):
        for x in range(soft.shape[2]):
            cell = [gains[k] * soft[k, y, x] for k in range(soft.shape[0])]
            out[:, y, x] = np.array(cell) / sum(cell)
    return out


def test_dilution_gain_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    soft = torch.softmax(0.3 * torch.randn(5, 5, 6, generator=g), 0)  # every cell below 0.4
    soft[:, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])  # object 1 has a confident cell: unchanged
    soft[:, 0, 1] = torch.tensor([0.4, 0.0, 0.6, 0.0, 0.0])  # object 2 diluted to a peak of 0.6: gain 1 / 0.6
    soft[:, 0, 2] = torch.tensor([0.2, 0.0, 0.0, 0.8, 0.0])  # object 3 peaks at 0.8: gain 1.25
    soft[4] = soft[4].clamp(max=0.3)  # object 4 fading out (peak below DILUTED_PEAK): unchanged
    soft = soft / soft.sum(0, keepdim=True)
    peaks = soft.flatten(1).amax(1)
    assert peaks[1] == 1 and 0.55 < peaks[2] < 0.65 and 0.75 < peaks[3] < 0.85 and peaks[4] < DILUTED_PEAK
    lifted = lift_diluted_objects(soft, max_gain=1.5)
    np.testing.assert_allclose(lifted.numpy(), lift_by_hand(soft.double().numpy(), 1.5), atol=1e-6)
    assert torch.allclose(lifted.sum(0), torch.ones(5, 6))
    lifted_peaks = lifted.flatten(1).amax(1)
    assert lifted_peaks[2] > peaks[2] and lifted_peaks[3] > peaks[3]
    assert lifted_peaks[1] == 1 and lifted_peaks[4] <= peaks[4]  # only renormalised around the lifted objects
    # the gain is capped: object 2 needs 1 / 0.6 but gets 1.5 at most, 1.2 with a lower cap
    capped = lift_diluted_objects(soft, max_gain=1.2)
    np.testing.assert_allclose(capped.numpy(), lift_by_hand(soft.double().numpy(), 1.2), atol=1e-6)
    assert torch.allclose(lift_diluted_objects(soft, max_gain=1.0), soft)


def test_dilution_gain_is_a_protocol_setting_of_at_least_one():
    assert PropagationSettings().dilution_gain == 1.0
    assert PropagationSettings(dilution_gain=1.5).protocol()['dilution_gain'] == 1.5
    with pytest.raises(ValueError, match='dilution_gain must be >= 1'):
        PropagationSettings(dilution_gain=0.9)
