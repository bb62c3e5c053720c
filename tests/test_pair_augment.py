"""SemiMatch's pair augmentations against separate computations: the affine matrix written out by hand, the
spline through its control points, warped blobs, masks and correlations read pixel by pixel from
``backward`` in numpy, KeyOut / KeyMix squares, and the photometric ops against their formulas and cv2."""
import math

import cv2
import numpy as np
import pytest
import torch

from sfc_plugin.correspondence.augment import (STRONG_OPS, WEAK_OPS, AffineTPSWarp, adjust_hue, box_blur,
                                               equalize, key_mix, key_out, photometric, posterize, sharpen,
                                               solarize, strong_photometric, to_gray, weak_photometric)
from sfc_plugin.datasets.transforms import colour


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rotation(degrees: float) -> np.ndarray:
    radians = math.radians(degrees)
    return np.array([[math.cos(radians), -math.sin(radians)], [math.sin(radians), math.cos(radians)]])


def pixel_indices(normalised: np.ndarray, size: int) -> np.ndarray:
    """grid_sample's nearest pixel (align_corners=False), clamped to the image (the warp reads the border)."""
    return np.clip(np.rint(((normalised + 1) * size - 1) / 2), 0, size - 1).astype(int)


def near_rounding_tie(normalised: np.ndarray, size: int, margin: float = 1e-3) -> np.ndarray:
    """Samples within ``margin`` pixels of a nearest-neighbour rounding boundary (float noise decides them)."""
    pixels = ((normalised + 1) * size - 1) / 2
    return np.abs(pixels - np.floor(pixels) - 0.5) < margin


def test_pure_affine_backward_is_the_hand_made_matrix_and_forward_inverts_it():
    angles, axes = [10.0, -14.0], [-20.0, 25.0]
    scales, shifts = [(0.8, 1.2), (1.1, 0.9)], [(0.1, -0.05), (-0.2, 0.15)]
    warp = AffineTPSWarp.from_parameters(*(torch.tensor(values, dtype=torch.float64)
                                           for values in (angles, axes, scales, shifts)))
    points = torch.rand(2, 50, 2, generator=generator(), dtype=torch.float64) * 1.6 - 0.8
    expected = []
    for b in range(2):
        matrix = rotation(angles[b]) @ rotation(-axes[b]) @ np.diag(scales[b]) @ rotation(axes[b])
        expected.append(points[b].numpy() @ matrix.T + np.array(shifts[b]))
    np.testing.assert_allclose(warp.backward(points).numpy(), np.stack(expected), atol=1e-10)
    inputs = warp.backward(points)
    np.testing.assert_allclose(warp.forward(inputs).numpy(), points.numpy(), atol=1e-8)
    # an input point whose preimage lies outside the output has no forward image
    matrix = rotation(angles[0]) @ rotation(-axes[0]) @ np.diag(scales[0]) @ rotation(axes[0])
    outside = torch.tensor([[1.5, 0.0]], dtype=torch.float64) @ torch.tensor(matrix.T) + torch.tensor(shifts[0])
    assert warp.forward(torch.cat([outside, outside])[:, None])[0].isnan().all()


def test_spline_moves_the_control_points_by_their_offsets():
    offsets = torch.rand(1, 9, 2, generator=generator(1), dtype=torch.float64) * 0.6 - 0.3
    warp = AffineTPSWarp.from_parameters(torch.zeros(1), torch.zeros(1), torch.ones(1, 2), torch.zeros(1, 2),
                                         offsets)
    controls = torch.tensor([[x, y] for y in (-1.0, 0.0, 1.0) for x in (-1.0, 0.0, 1.0)], dtype=torch.float64)
    np.testing.assert_allclose(warp.backward(controls[None]).numpy(), (controls + offsets).numpy(), atol=1e-10)


def test_random_warps_are_seeded_within_their_ranges_and_forward_inverts_backward():
    first, second = AffineTPSWarp.random(6, generator(3)), AffineTPSWarp.random(6, generator(3))
    assert torch.equal(first.affine, second.affine) and torch.equal(first.control_offsets, second.control_offsets)
    assert first.control_offsets.abs().max() <= 0.4 and first.affine[:, :, 2].abs().max() <= 0.25
    # the determinant of the affine part is lambda1 * lambda2
    determinant = torch.linalg.det(first.affine[:, :, :2])
    assert ((determinant >= 0.75 ** 2) & (determinant <= 1.25 ** 2)).all()

    warp = AffineTPSWarp.random(6, generator(4), tps_jitter=0.2)  # no folds at this jitter
    outputs = torch.rand(6, 400, 2, generator=generator(5), dtype=torch.float64) * 2 - 1
    inputs = warp.backward(outputs)
    np.testing.assert_allclose(warp.forward(inputs).numpy(), outputs.numpy(), atol=1e-6)

    folding = AffineTPSWarp.random(6, generator(6))  # SemiMatch's jitter: backward(forward(q)) = q still holds
    queries = torch.rand(6, 400, 2, generator=generator(7), dtype=torch.float64) * 2 - 1
    found = folding.forward(queries)
    ok = ~found.isnan().any(-1)
    assert ok.float().mean() > 0.5
    np.testing.assert_allclose(folding.backward(found)[ok].numpy(), queries[ok].numpy(), atol=1e-6)
    assert (found[ok].abs() <= 1).all()
    nan_row = torch.full((6, 1, 2), math.nan, dtype=torch.float64)
    assert folding.forward(nan_row).isnan().all()


def test_a_warped_blob_lands_where_warp_points_px_puts_its_centre():
    size, sigma = 128, 1.5
    centres = torch.tensor([[[40.3, 57.8]], [[70.0, 66.5]], [[58.2, 44.9]], [[64.0, 64.0]]], dtype=torch.float64)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    blobs = np.stack([np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * sigma ** 2))
                      for x, y in centres[:, 0].numpy()])
    warp = AffineTPSWarp.random(4, generator(8))
    warped = warp.warp(torch.from_numpy(blobs)[:, None], mode='bilinear')[:, 0].numpy()
    moved = warp.warp_points_px(centres, size)[:, 0].numpy()  # (4, 2)
    checked = 0
    for image, (x, y) in zip(warped, moved):
        if not (np.isfinite(x) and 12 <= x <= size - 13 and 12 <= y <= size - 13):
            continue
        centroid = np.array([(image * columns).sum(), (image * rows).sum()]) / image.sum()
        np.testing.assert_allclose(centroid, [x, y], atol=0.5)
        checked += 1
    assert checked >= 3


def test_a_mask_warped_with_nearest_is_read_per_pixel_from_backward():
    height, width = 40, 56
    masks = (torch.rand(3, 1, height, width, generator=generator(9)) > 0.5).float()
    warp = AffineTPSWarp.random(3, generator(10))
    warped = warp.warp(masks, mode='nearest').numpy()[:, 0]
    ys, xs = np.mgrid[0:height, 0:width]
    outputs = np.stack([(2 * xs + 1) / width - 1, (2 * ys + 1) / height - 1], -1).reshape(1, -1, 2)
    samples = warp.backward(torch.from_numpy(np.repeat(outputs, 3, 0))).numpy().reshape(3, height, width, 2)
    inside = (np.abs(samples) <= 1).all(-1)
    expected = np.where(inside, masks.numpy()[np.arange(3)[:, None, None], 0,
                                              pixel_indices(samples[..., 1], height),
                                              pixel_indices(samples[..., 0], width)], 0)
    decided = ~(near_rounding_tie(samples[..., 0], width) | near_rounding_tie(samples[..., 1], height))
    assert decided.mean() > 0.99 and inside.any() and (~inside).any()
    np.testing.assert_array_equal(warped[decided], expected[decided])
    np.testing.assert_array_equal(warp.valid(height, width).numpy()[:, 0], inside)


def test_a_warped_correlation_keeps_each_target_cell_s_source_index():
    grid, batch = 16, 2
    cells = grid * grid
    source_of = torch.stack([torch.randperm(cells, generator=generator(11 + b)) for b in range(batch)])  # (B, N_t)
    volume = torch.zeros(batch, cells, cells)  # (B, S, N_t) viewed as (B, S, h, w)
    volume.scatter_(1, source_of[:, None], 1.0)
    warp = AffineTPSWarp.random(batch, generator(13))
    warped = warp.warp(volume.view(batch, cells, grid, grid), mode='nearest')  # (B, S, h, w)
    ys, xs = np.mgrid[0:grid, 0:grid]
    outputs = np.stack([(2 * xs + 1) / grid - 1, (2 * ys + 1) / grid - 1], -1).reshape(1, -1, 2)
    samples = warp.backward(torch.from_numpy(np.repeat(outputs, batch, 0))).numpy().reshape(batch, grid, grid, 2)
    inside = (np.abs(samples) <= 1).all(-1)
    decided = ~(near_rounding_tie(samples[..., 0], grid) | near_rounding_tie(samples[..., 1], grid))
    for b in range(batch):
        for i in range(grid):
            for j in range(grid):
                column = warped[b, :, i, j]
                if not inside[b, i, j]:
                    assert not column.any()
                elif decided[b, i, j]:
                    cell = pixel_indices(samples[b, i, j, 1], grid) * grid + pixel_indices(samples[b, i, j, 0], grid)
                    assert column.sum() == 1 and column.argmax() == source_of[b, cell]
    assert inside.any() and (~inside).any()


def keypoint_image_batch():
    images = torch.rand(2, 3, 64, 80, generator=generator(14)) * 0.9 + 0.05  # no zero pixels
    keypoints = torch.tensor([[[10.0, 12.0], [40.4, 30.6], [70.0, 55.0], [math.nan, math.nan]],
                              [[5.2, 60.0], [79.0, 0.0], [30.0, 30.0], [50.0, 20.0]]])
    boxes = torch.tensor([[0.0, 0.0, 79.0, 40.0], [10.0, 5.0, 60.0, 63.0]])  # longest sides 79 and 58
    return images, keypoints, boxes


def chebyshev_to_keypoints(keypoints: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(B, H, W, K) max(|dx|, |dy|) from each pixel to each keypoint's pixel (inf for absent ones)."""
    centres = np.floor(np.nan_to_num(keypoints.numpy(), nan=1e9) + 0.5)
    ys, xs = np.mgrid[0:height, 0:width]
    return np.maximum(np.abs(xs[None, :, :, None] - centres[:, None, None, :, 0]),
                      np.abs(ys[None, :, :, None] - centres[:, None, None, :, 1]))


def test_key_out_blanks_only_squares_around_keypoints():
    images, keypoints, boxes = keypoint_image_batch()
    distance = chebyshev_to_keypoints(keypoints, 64, 80)  # (B, H, W, K)
    longest_side = np.round(0.1 * np.array([79.0, 58.0]))
    shortest_side = np.maximum(np.round(0.03 * np.array([79.0, 58.0])), 1)

    assert torch.equal(key_out(images, keypoints, boxes, generator(), p=0.0), images)
    every = key_out(images, keypoints, boxes, generator(), p=1.0)
    blanked = (every == 0).all(1).numpy()  # (B, H, W)
    changed = (every != images).any(1).numpy()
    assert np.array_equal(blanked, changed)
    for b in range(2):
        present = ~np.isnan(keypoints[b].numpy()).any(-1)
        surely = (distance[b][..., present] <= (shortest_side[b] - 1) // 2).any(-1)
        possibly = (distance[b][..., present] <= longest_side[b] // 2).any(-1)
        assert blanked[b][surely].all() and not blanked[b][~possibly].any()

    some = key_out(images, keypoints, boxes, generator(15), p=0.5)
    assert torch.equal(some, key_out(images, keypoints, boxes, generator(15), p=0.5))
    changed = (some != images).any(1).numpy()
    assert ((some == 0).all(1).numpy() == changed).all()
    possibly = np.stack([(distance[b] <= longest_side[b] // 2).any(-1) for b in range(2)])
    assert not changed[~possibly].any()


def test_key_mix_swaps_exactly_the_two_patches():
    source = torch.rand(1, 3, 40, 50, generator=generator(16))
    target = torch.rand(1, 3, 40, 50, generator=generator(17))
    src_kps = torch.tensor([[[10.0, 10.0], [47.6, 20.0], [math.nan, math.nan]]])
    trg_kps = torch.tensor([[[30.2, 25.0], [20.0, 2.0], [5.0, 5.0]]])
    mixed_source, mixed_target = key_mix(source, target, src_kps, trg_kps, generator(), p=1.0, side_range=(7, 7))
    expected_source, expected_target = source.clone(), target.clone()
    # pair 0: 7 x 7 around (10, 10) and (30, 25); pair 1 clipped: x 48 +-3 -> 45..49 (border), y 20 -> 17..22 but
    # the target's y 2 allows 2 rows above: 18..23 in the source, 0..5 in the target
    expected_source[..., 7:14, 7:14], expected_target[..., 22:29, 27:34] = \
        target[..., 22:29, 27:34], source[..., 7:14, 7:14]
    expected_source[..., 18:24, 45:50], expected_target[..., 0:6, 17:22] = \
        target[..., 0:6, 17:22], source[..., 18:24, 45:50]
    assert torch.equal(mixed_source, expected_source) and torch.equal(mixed_target, expected_target)
    unchanged = key_mix(source, target, src_kps, trg_kps, generator(), p=0.0)
    assert torch.equal(unchanged[0], source) and torch.equal(unchanged[1], target)
    random_a = key_mix(source, target, src_kps, trg_kps, generator(18), p=0.5)
    random_b = key_mix(source, target, src_kps, trg_kps, generator(18), p=0.5)
    assert all(torch.equal(a, b) for a, b in zip(random_a, random_b))


def test_photometric_lists_keep_shape_and_range_and_p0_is_the_identity():
    images = torch.rand(4, 3, 32, 40, generator=generator(19))
    for augment in (weak_photometric, strong_photometric):
        assert torch.equal(augment(images, generator(), p=0.0), images)
        changed = augment(images, generator(20), p=1.0)
        assert changed.shape == images.shape and 0 <= changed.min() and changed.max() <= 1
        assert torch.equal(changed, augment(images, generator(20), p=1.0))
        assert not torch.equal(changed, images)
    for name in set(WEAK_OPS) | set(STRONG_OPS):
        single = photometric(images, [name], generator(21), p=1.0)
        assert single.shape == images.shape and 0 <= single.min() and single.max() <= 1, name
    with pytest.raises(ValueError, match='unknown ops'):
        photometric(images, ['mosaic'], generator())


def test_photometric_ops_against_their_formulas():
    levels = torch.tensor([0, 1, 15, 16, 17, 127, 128, 200, 255], dtype=torch.float64)
    images = (levels / 255).view(1, 1, 1, -1).expand(2, 3, 1, -1).contiguous()
    np.testing.assert_allclose(posterize(images, torch.tensor([4, 6]))[:, 0, 0].numpy() * 255,
                               [[0, 0, 0, 16, 16, 112, 128, 192, 240], [0, 0, 12, 16, 16, 124, 128, 200, 252]])
    np.testing.assert_allclose(posterize(images, torch.tensor([8, 8])).numpy(), images.numpy(), atol=1e-12)
    np.testing.assert_allclose(solarize(images)[0, 0, 0].numpy() * 255,
                               [0, 1, 15, 16, 17, 127, 127, 55, 0], atol=1e-9)

    colourful = torch.rand(2, 3, 24, 30, generator=generator(22), dtype=torch.float64)
    gray = to_gray(colourful)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    np.testing.assert_allclose(gray[:, 0].numpy(), np.einsum('bchw,c->bhw', colourful.numpy(),
                                                             [0.299, 0.587, 0.114]), atol=1e-6)

    as_uint8 = (colourful * 255).round().numpy().astype(np.uint8).transpose(0, 2, 3, 1)  # (B, H, W, 3)
    quantised = torch.from_numpy(as_uint8.transpose(0, 3, 1, 2) / 255.0)
    equalized = np.stack([np.stack([cv2.equalizeHist(np.ascontiguousarray(image[..., c])) for c in range(3)])
                          for image in as_uint8])
    assert np.abs(equalize(quantised).numpy() * 255 - equalized).max() <= 1 + 1e-9
    blurred = box_blur(quantised, torch.tensor([3, 7]))
    for b, size in enumerate((3, 7)):
        np.testing.assert_allclose(blurred[b].numpy().transpose(1, 2, 0),
                                   cv2.blur(as_uint8[b].astype(np.float64) / 255, (size, size)), atol=1e-9)
    kernel = np.full((3, 3), -0.4)
    kernel[1, 1] = 0.6 + 0.4 * 8.7
    sharpened = sharpen(quantised, torch.tensor([0.4, 0.4]), torch.tensor([0.7, 0.7]))
    np.testing.assert_allclose(sharpened[0].numpy().transpose(1, 2, 0),
                               np.clip(cv2.filter2D(as_uint8[0].astype(np.float64) / 255, -1, kernel), 0, 1),
                               atol=1e-6)  # cv2 rounds the kernel to float32
    shifted = adjust_hue(quantised.float(), torch.tensor([0.15, -0.3]))
    for b, shift in enumerate((0.15, -0.3)):
        reference = colour.adjust_hue(as_uint8[b].astype(np.float32), shift) / 255
        np.testing.assert_allclose(shifted[b].numpy().transpose(1, 2, 0), reference, atol=2e-3)
    np.testing.assert_allclose(adjust_hue(quantised, torch.zeros(2)).numpy(), quantised.numpy(), atol=1e-9)
