"""Label maps <-> soft labels at feature resolution."""
import math

import numpy as np
import pytest
import torch

from sfc_plugin.propagation import feature_size, label_values_of, mask_to_soft_labels, soft_labels_to_ids


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
