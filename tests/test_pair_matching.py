"""The matchers on feature maps with a known correspondence, the feature geometry and hyperpixels."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.correspondence import (MATCHERS, BoxPrior, FeatureExtractor, FeatureMap, PairMatcher,
                                       orientation_score, receptive_field)
from sfc_plugin.correspondence.matching import sinkhorn, transfer_points
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
    assert error.max() < (2.0 if method.endswith('soft_argmax') else 1e-6), error.max()


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
    with pytest.raises(ValueError, match='kernel_sigma belongs to method kernel_soft_argmax'):
        PairMatcher('soft_argmax', kernel_sigma=5)  # a config of the days when soft_argmax had the kernel
    with pytest.raises(ValueError, match='receptive_field must be one of cells, network'):
        PairMatcher('ot_rhm', receptive_field='scot')


def _two_peak_maps():
    """One source cell; the target has its exact feature at cell (1, 1) and a near copy at (1, 6)."""
    source = torch.zeros(3, 3, 8)
    source[0, 1, 1] = 1.0
    source[1] = 0.01  # every other cell: nearly orthogonal
    source = F.normalize(source, dim=0)
    target = source.clone()
    target[:, 1, 6] = F.normalize(torch.tensor([0.99, 0.14, 0.0]), dim=0)
    return FeatureMap(source, (24, 64)), FeatureMap(target, (24, 64))


def test_plain_and_kernel_soft_argmax_against_a_loop():
    source, target = _two_peak_maps()
    point = source.centres()[1 * 8 + 1][None].numpy()
    cosines = (source.sample(torch.as_tensor(point)) @ target.flat())[0].double().numpy()  # (24,)
    centres = target.centres().numpy()
    for method, temperature in (('soft_argmax', 0.05), ('kernel_soft_argmax', 0.05)):
        weights = []
        for index, cosine in enumerate(cosines):  # CATs: softmax(cos / beta); SFNet: times a Gaussian first
            row, col = divmod(index, 8)
            if method == 'kernel_soft_argmax':
                cosine *= np.exp(-((row - 1) ** 2 + (col - 1) ** 2) / (2 * 5.0 ** 2))
            weights.append(np.exp(cosine / temperature))
        expected = (np.array(weights)[:, None] * centres).sum(0) / sum(weights)
        result = PairMatcher(method, softmax_temperature=temperature)(source, target, point)
        np.testing.assert_allclose(result.points[0], expected, atol=1e-6)
    plain = PairMatcher('soft_argmax', softmax_temperature=0.05)(source, target, point).points[0]
    kernel = PairMatcher('kernel_soft_argmax', softmax_temperature=0.05)(source, target, point).points[0]
    assert plain[0] > kernel[0] + 2  # the second peak, 5 cells right, pulls the plain one more


def test_soft_box_prior_picks_the_copy_near_the_box_position():
    source, target = _two_peak_maps()
    target.features[:, 1, 6] = target.features[:, 1, 1]  # two exact copies: nn takes the first
    point = source.centres()[1 * 8 + 1][None].numpy()  # (11.5, 11.5)
    assert PairMatcher('nn')(source, target, point).points[0].tolist() == [11.5, 11.5]
    # Source box around x 0..23, target box x 40..63: the prior puts the point at x 40 + 11.5 / 23 * 23.
    prior = BoxPrior(np.array([0.0, 0, 23, 23]), np.array([40.0, 0, 63, 23]))
    np.testing.assert_allclose(prior.transfer(point), [[51.5, 11.5]])
    for method in MATCHERS:
        result = PairMatcher(method, box_prior_sigma=0.2)(source, target, point, prior)
        assert abs(result.points[0, 0] - 51.5) < 2, (method, result.points)
    with pytest.raises(ValueError, match='needs the annotated boxes'):
        PairMatcher('nn', box_prior_sigma=0.2)(source, target, point)


def test_box_prior_transfer_by_hand():
    prior = BoxPrior(np.array([10.0, 20, 30, 60]), np.array([100.0, 0, 200, 20]))
    points = np.array([[10.0, 20], [30, 60], [15, 50]])
    np.testing.assert_allclose(prior.transfer(points), [[100, 0], [200, 20], [125, 15]])
    prior.mirrored = True  # relative x -> 1 - x
    np.testing.assert_allclose(prior.transfer(points), [[200, 0], [100, 20], [175, 15]])
    assert prior.target_side() == 100


def test_orientation_score_compares_the_layouts_inside_the_boxes():
    generator = torch.Generator().manual_seed(3)
    features = F.normalize(torch.randn(8, 4, 5, generator=generator), dim=0)
    source = FeatureMap(features, (32, 40))
    mirror = FeatureMap(features.flip(-1), (32, 40))
    # Whole images: each cell against the cell at the same place (centres map onto centres).
    same_place = [float(features[:, i, j] @ features.flip(-1)[:, i, j]) for i in range(4) for j in range(5)]
    assert orientation_score(source, mirror) == pytest.approx(np.mean(same_place), abs=1e-6)
    assert orientation_score(source, source) == pytest.approx(1.0, abs=1e-6)
    # Box x 0..20, y 0..10 of the source: cells centred at x 3.5, 11.5, 19.5 and y 3.5; the target box
    # is the same box moved by two cells (16 pixels) to the right, so each maps onto the cell two to its right.
    shifted = FeatureMap(torch.roll(features, 2, dims=-1), (32, 40))
    box = np.array([0.0, 0, 20, 10])
    assert orientation_score(source, shifted, box, box + [16, 0, 16, 0]) == pytest.approx(1.0, abs=1e-6)
    inside = [float(features[:, 0, j] @ torch.roll(features, 2, dims=-1)[:, 0, j]) for j in range(3)]
    assert orientation_score(source, shifted, box, box) == pytest.approx(np.mean(inside), abs=1e-6)


def test_receptive_fields_are_scots_table_for_resnet50():
    backbone = MODELS.build(dict(type='ResNet', depth=50, strides=(1, 2, 2, 2), num_stages=4))
    names = ['maxpool', 'layer1.0', 'layer1.1', 'layer1.2', 'layer2.0', 'layer2.1', 'layer2.2', 'layer2.3',
             'layer3.0', 'layer3.1']
    # HPF / SCOT's pre-computed receptive fields of hyperpixel ids 0..9 of a ResNet-50.
    assert [receptive_field(backbone, name) for name in names] == [11, 19, 27, 35, 43, 59, 75, 91, 107, 139]
    fused = MODELS.build(dict(type='SFCBackbone', fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1),
                                                                    num_stages=3)))
    # Stem 11 at jump 4, layer1: 4 3x3 convs (+32), layer2: 4 at jump 4 then 8 (+8 +24), layer3: 4 at jump 8.
    assert receptive_field(fused) == receptive_field(fused, 'fine_grained.layer3') == 11 + 32 + 32 + 64 + 24


def test_transfer_points_against_a_loop():
    rng = np.random.default_rng(0)
    features = FeatureMap(torch.zeros(1, 5, 7), (40, 56))
    src_centres = features.centres()
    matched = torch.as_tensor(rng.uniform(0, 60, (35, 2)))
    scores = torch.as_tensor(rng.uniform(0, 1, 35))
    points = torch.as_tensor(np.array([[10.0, 12.0], [30.2, 20.7], [3.5, 3.5], [55.0, 39.0]]))
    field = (19.0, 27.0)
    predicted, point_scores = transfer_points(points, src_centres, matched, scores, field)
    for k, (x, y) in enumerate(points.tolist()):
        moved, weights = [], []
        for (cx, cy), (mx, my), score in zip(src_centres.tolist(), matched.tolist(), scores.tolist()):
            if abs(x - cx) <= field[0] / 2 and abs(y - cy) <= field[1] / 2:
                moved.append((mx + x - cx, my + y - cy))
                weights.append(score)
        assert len(moved) > 1
        np.testing.assert_allclose(predicted[k].numpy(), np.mean(moved, axis=0), atol=1e-9)
        assert float(point_scores[k]) == pytest.approx(np.mean(weights))


def test_ot_rhm_network_field_uses_the_maps_receptive_field():
    source, target = _shifted_maps(shift=(3, 2))
    assert PairMatcher('ot_rhm', receptive_field='network').field_size(
        FeatureMap(source.features, source.image_size, receptive_field=(42.0, 42.0))) == (42.0, 42.0)
    assert PairMatcher('ot_rhm', rf_cells=2).field_size(source) == (16.0, 16.0)
    with pytest.raises(ValueError, match='needs a feature map from a FeatureExtractor'):
        PairMatcher('ot_rhm', receptive_field='network')(source, target, np.array([[50.0, 40.0]]))
    extracted = FeatureExtractor(_tiny_backbone(), max_side=64)(np.zeros((32, 48, 3), np.uint8))
    assert extracted.receptive_field == pytest.approx((162 * 48 / 64, 162 * 32 / 43))  # SCOT: +- floor(163 / 2)


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
    with pytest.raises(ValueError, match='hyperpixels must be one of per_layer, hpf'):
        FeatureExtractor(backbone, layers=['fine_grained.layer2'], hyperpixels='scot')


def test_hpf_hyperpixels_are_raw_pre_relu_outputs_normalised_together():
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)).eval()
    for module in backbone.modules():  # non-trivial batch norms (not zero-initialised), so that ReLUs cut
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.5, 0.5)
    image = np.random.default_rng(2).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    features = FeatureExtractor(backbone, layers=['layer1', 'layer2'], hyperpixels='hpf')(image)

    def before_relu(block, x):  # a BasicBlock's output before its last ReLU, written out
        identity = x if block.downsample is None else block.downsample(x)
        return block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))) + identity

    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
        x = backbone.layer1[0](x)
        layer1 = before_relu(backbone.layer1[1], x)
        x = backbone.layer2[0](torch.relu(layer1))
        layer2 = before_relu(backbone.layer2[1], x)
    assert (layer1 < 0).any() and layer1.shape[-2:] != layer2.shape[-2:]
    layer2 = F.interpolate(layer2, size=layer1.shape[-2:], mode='bilinear', align_corners=True)
    expected = F.normalize(torch.cat([layer1, layer2], dim=1), dim=1)[0]
    assert features.features.shape == expected.shape
    assert torch.allclose(features.features, expected, atol=1e-5)
    per_layer = FeatureExtractor(backbone, layers=['layer1', 'layer2'])(image)
    assert not torch.allclose(per_layer.features, expected, atol=1e-2)


def test_cells_of_a_padded_map_keep_the_stride():
    backbone = _tiny_backbone()
    image = np.random.default_rng(1).integers(0, 255, (213, 320, 3), dtype=np.uint8)
    features = FeatureExtractor(backbone)(image)  # 27 x 40 cells: the last row covers pixels 208..215
    assert features.features.shape[1:] == (27, 40) and features.cell_size == (8.0, 8.0)
    assert features.centres()[-1].tolist() == [315.5, 211.5]
    half = FeatureExtractor(backbone, max_side=160)(image)  # input 160 x 106 -> 14 x 20 cells of 16 image pixels
    assert half.features.shape[1:] == (14, 20) and half.cell_size == pytest.approx((16.0, 8 * 213 / 106))
    assert FeatureExtractor.cell_stride((100, 100), (30, 30)) == (100 / 30, 100 / 30)  # not a strided map
