"""CATs-lite: the mutual-NN filter, CATs' keypoint flow labels, soft-argmax, the end-point error and
the aggregator's structure (zero-initialised head, both directions), against explicit computations."""
import torch

from sfc_plugin.correspondence.cats import (CorrelationAggregator, cell_positions, endpoint_error, keypoint_flow_labels,
                                            layer_correlations, mutual_nn_filter, soft_argmax)


def test_mutual_nn_filter_against_a_loop():
    correlation = torch.rand(2, 3, 5, 6) + 0.1
    filtered = mutual_nn_filter(correlation, eps=0.0)
    for b in range(2):
        for layer in range(3):
            c = correlation[b, layer]
            for q in range(5):
                for r in range(6):
                    value = c[q, r] * (c[q, r] / c[q].max()) * (c[q, r] / c[:, r].max())
                    assert torch.isclose(filtered[b, layer, q, r], value)


def test_layer_correlations_are_cosines():
    query = [torch.nn.functional.normalize(torch.randn(1, 4, 2, 2), dim=1)]
    reference = [torch.nn.functional.normalize(torch.randn(1, 4, 2, 2), dim=1)]
    correlation = layer_correlations(query, reference)
    assert correlation.shape == (1, 1, 4, 4)
    q = query[0][0].reshape(4, -1)
    r = reference[0][0].reshape(4, -1)
    assert torch.allclose(correlation[0, 0], q.T @ r, atol=1e-6)


def test_keypoint_flow_labels_follow_cats_box_rule():
    # 64 px images, grid 4 (16 px cells, centres 7.5, 23.5, 39.5, 55.5), 35 px boxes (half 17.5)
    query = torch.tensor([[[8.0, 8.0], [30.0, 8.0], [float('nan'), float('nan')]]])
    reference = torch.tensor([[[40.0, 24.0], [62.0, 40.0], [1.0, 1.0]]])
    labels, mask = keypoint_flow_labels(query, reference, 64, 4, 35.0)
    first = torch.tensor([32.0, 16.0]) / 16
    second = torch.tensor([32.0, 32.0]) / 16
    expected_mask = torch.zeros(4, 4, dtype=torch.bool)
    expected = torch.zeros(4, 4, 2)
    for row in range(4):
        for column in range(4):
            centre = torch.tensor([column * 16 + 7.5, row * 16 + 7.5])
            covering = [flow for point, flow in ((torch.tensor([8.0, 8.0]), first), (torch.tensor([30.0, 8.0]), second))
                        if ((point - centre).abs() <= 17.5).all()]
            if covering:
                expected_mask[row, column] = True
                expected[row, column] = torch.stack(covering).mean(0)
    assert torch.equal(mask[0].view(4, 4), expected_mask)
    assert torch.allclose(labels[0].view(4, 4, 2), expected)
    assert expected_mask.sum() == 6  # columns 0-2 of rows 0-1; column 1 is covered by both points
    assert torch.allclose(expected[0, 0], first) and torch.allclose(expected[0, 2], second)
    assert torch.allclose(expected[1, 1], (first + second) / 2)


def test_soft_argmax_and_endpoint_error():
    grid = 3
    correlation = torch.full((1, 9, 9), -10.0)
    for query in range(9):
        correlation[0, query, (query + 1) % 9] = 10.0  # one cell to the right (wrapping)
    positions = soft_argmax(correlation, grid, temperature=0.1)
    assert torch.allclose(positions[0], cell_positions(grid)[torch.arange(1, 10) % 9], atol=1e-6)
    labels = torch.zeros(1, 9, 2)
    mask = torch.zeros(1, 9, dtype=torch.bool)
    mask[0, [0, 2]] = True  # cell 0 moves (1, 0); cell 2 wraps to cell 3 = (0, 1): flow (-2, 1)
    error = endpoint_error(correlation, labels, mask, grid, 0.1)
    assert torch.isclose(error, torch.tensor((1.0 + 5 ** 0.5) / 2), atol=1e-5)
    assert endpoint_error(correlation, labels, torch.zeros_like(mask), grid, 0.1).item() == 0


def test_untrained_aggregator_returns_the_filtered_correlation_and_is_direction_symmetric():
    torch.manual_seed(0)
    aggregator = CorrelationAggregator([3, 5], grid=2, projection_dim=4, heads=2)
    correlation = torch.rand(2, 2, 4, 4)
    query = [torch.randn(2, 3, 2, 2), torch.randn(2, 5, 2, 2)]
    reference = [torch.randn(2, 3, 2, 2), torch.randn(2, 5, 2, 2)]
    assert torch.allclose(aggregator(correlation, query, reference), correlation.mean(1))  # head starts at zero
    torch.nn.init.normal_(aggregator.head.weight)
    refined = aggregator(correlation, query, reference)
    assert not torch.allclose(refined, correlation.mean(1))
    swapped = aggregator(correlation.transpose(2, 3), reference, query).transpose(1, 2)
    assert torch.allclose(refined, swapped, atol=1e-5)


def test_kernel_soft_argmax_damps_far_cells_as_sfnet():
    grid = 4
    correlation = torch.zeros(1, 1, 16)
    correlation[0, 0, 0] = 1.0  # the argmax, cell (0, 0)
    correlation[0, 0, 15] = 0.9  # a rival at the far corner (3, 3)
    positions = cell_positions(grid)
    squared = ((positions - positions[0]) ** 2).sum(-1)
    weights = torch.softmax(correlation[0, 0] * torch.exp(-squared / (2 * 1.5 ** 2)) / 0.1, dim=0)
    expected = weights @ positions
    kernel = soft_argmax(correlation, grid, 0.1, kernel_sigma=1.5)[0, 0]
    plain = soft_argmax(correlation, grid, 0.1)[0, 0]
    assert torch.allclose(kernel, expected, atol=1e-6)
    assert kernel.norm() < plain.norm()  # the far rival pulls the plain soft-argmax away from (0, 0)
