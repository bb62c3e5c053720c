"""The matchers on feature maps with a known correspondence, the feature geometry and hyperpixels."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.correspondence import MATCHERS, FeatureExtractor, FeatureMap, PairMatcher
from sfc_plugin.correspondence.matching import sinkhorn
from sfc_plugin.registry import MODELS


def _shifted_maps(shift=(3, 2), size=(12, 16), channels=64, stride=8, seed=0):
    """Random distinct cell features; the target shows the source moved by ``shift`` = (dx, dy) cells."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    source = F.normalize(torch.randn(channels, height, width, generator=generator), dim=0)
    target = F.normalize(torch.randn(channels, height, width, generator=generator), dim=0)
    dx, dy = shift
    target[:, dy:, dx:] = source[:, :height - dy, :width - dx]
    image_size = (height * stride, width * stride)
    return FeatureMap(source, image_size), FeatureMap(target, image_size)


def test_cell_centres_and_sampling_geometry():
    features, _ = _shifted_maps()
    centres = features.centres()
    assert centres[0].tolist() == [3.5, 3.5] and centres[1].tolist() == [11.5, 3.5]  # (j + 0.5) * 8 - 0.5
    sampled = features.sample(centres[:5])
    assert torch.allclose(sampled, features.flat()[:, :5].T, atol=1e-5)


@pytest.mark.parametrize('method', MATCHERS)
def test_every_matcher_recovers_a_known_shift(method):
    source, target = _shifted_maps(shift=(3, 2))
    # Source cell centres whose shifted cell lies inside the target.
    cells = [(row, col) for row in range(2, 8) for col in range(2, 10)]
    points = source.centres().view(12, 16, 2)[[r for r, _ in cells], [c for _, c in cells]].numpy()
    result = PairMatcher(method)(source, target, points)
    expected = points + np.array([3 * 8, 2 * 8])
    error = np.linalg.norm(result.points - expected, axis=1)
    assert result.points.shape == points.shape and result.scores.shape == (len(points),)
    assert np.isfinite(result.points).all()
    assert error.max() < (2.0 if method == 'soft_argmax' else 1e-6), error.max()


def test_mutual_nn_declines_a_one_sided_match():
    source, target = _shifted_maps(shift=(0, 0))
    # Two source cells whose features both point at target cell 0: only the more similar one is mutual.
    target.features[:, 0, 0] = F.normalize(source.features[:, 0, 0] + 0.9 * source.features[:, 5, 5], dim=0)
    source.features[:, 5, 5] = F.normalize(source.features[:, 5, 5] + 5 * target.features[:, 0, 0], dim=0)
    points = source.centres().view(12, 16, 2)[[0, 5], [0, 5]].numpy()
    nn = PairMatcher('nn')(source, target, points)
    mutual = PairMatcher('mutual_nn')(source, target, points)
    assert np.allclose(nn.points[1], target.centres()[0].numpy())  # both go to target cell 0
    assert np.isnan(mutual.points[0]).all()  # target cell 0's nearest source cell is (5, 5), not (0, 0)
    assert np.allclose(mutual.points[1], nn.points[1])


def test_sinkhorn_converges_to_the_marginals():
    cost = torch.rand(30, 40, dtype=torch.float64)
    plan = sinkhorn(cost, epsilon=0.1, num_iters=200)
    assert torch.allclose(plan.sum(1), torch.full((30,), 1 / 30, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(plan.sum(0), torch.full((40,), 1 / 40, dtype=torch.float64), atol=1e-6)
    one = sinkhorn(cost, epsilon=0.1, num_iters=1)  # SCOT's single iteration: rows exact
    assert torch.allclose(one.sum(1), torch.full((30,), 1 / 30, dtype=torch.float64), atol=1e-9)


def test_bad_matcher_settings():
    with pytest.raises(ValueError, match='unknown method'):
        PairMatcher('ransac')
    with pytest.raises(ValueError):
        PairMatcher('ot_rhm', ot_iters=0)


def _tiny_backbone():
    torch.manual_seed(0)
    return MODELS.build(dict(type='SFCBackbone', fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1),
                                                                   num_stages=3))).eval()


def test_extractor_sizes_and_hyperpixels():
    backbone = _tiny_backbone()
    image = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    native = FeatureExtractor(backbone)(image)
    assert native.features.shape == (256, 8, 12) and native.image_size == (60, 90)
    resized = FeatureExtractor(backbone, max_side=120, feature_stride=4)(image)
    assert resized.features.shape == (256, 20, 30) and resized.image_size == (60, 90)
    hyper = FeatureExtractor(backbone, layers=['fine_grained.layer2', 'fine_grained.layer3'])(image)
    assert hyper.features.shape == (128 + 256, 8, 12)
    assert torch.allclose(hyper.features.norm(dim=0), torch.ones(8, 12), atol=1e-5)
    with pytest.raises(ValueError, match='no submodule fine_grained.layer9'):
        FeatureExtractor(backbone, layers=['fine_grained.layer9'])
    with pytest.raises(ValueError, match='not both'):
        FeatureExtractor(backbone, input_size=(64, 64), max_side=64)


def test_cells_of_a_padded_map_keep_the_stride():
    backbone = _tiny_backbone()
    image = np.random.default_rng(1).integers(0, 255, (213, 320, 3), dtype=np.uint8)
    features = FeatureExtractor(backbone)(image)  # 27 x 40 cells: the last row covers pixels 208..215
    assert features.features.shape[1:] == (27, 40) and features.cell_size == (8.0, 8.0)
    assert features.centres()[-1].tolist() == [315.5, 211.5]
    half = FeatureExtractor(backbone, max_side=160)(image)  # input 160 x 106 -> 14 x 20 cells of 16 image pixels
    assert half.features.shape[1:] == (14, 20) and half.cell_size == pytest.approx((16.0, 8 * 213 / 106))
    assert FeatureExtractor.cell_stride((100, 100), (30, 30)) == (100 / 30, 100 / 30)  # not a strided map
