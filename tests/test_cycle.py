"""Cross-instance cycle term: crop geometry and labels, the walk, gradients, the pair dataset, the layer search."""
import json
import math
import os
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import BaseDataElement
from torch import nn

from conftest import REPO_ROOT
from pair_fixtures import make_spair, spair_record, write_photo
from sfc_plugin.apis.layer_search import beam_search, best_row, search_layers
from sfc_plugin.datasets import CyclePairDataset, same_category_pairs
from sfc_plugin.datasets.cycle_pairs import zip_indices
from sfc_plugin.models import CrossInstanceCycle, ResNet
from sfc_plugin.models.selfsup.cycle import (Crops, attention_map, hyperpixels, layer_outputs, unwarp_points,
                                             warp_points)
from sfc_plugin.registry import MODELS

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'moco', 'mococycle_r18_tiny_cpu.py')


class PatchNet(nn.Module):
    """Features of 16 x 16 patches (``layer3``, stride 16) and of 2 x 2 of them (``layer4``, stride 32):
    exactly translation-equivariant on the 16-pixel grid, so a grid-aligned crop's cells have the
    features of the image cells they copy."""

    def __init__(self) -> None:
        super().__init__()
        self.layer3 = nn.Conv2d(3, 32, 16, stride=16)
        self.layer4 = nn.Conv2d(32, 32, 2, stride=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(images))


def crops_of(flips, degrees, origins) -> Crops:
    return Crops(torch.tensor(flips), torch.tensor([math.radians(d) for d in degrees]),
                 torch.tensor(origins, dtype=torch.float32))


def test_crop_is_the_flipped_rotated_image_cut_at_the_origin():
    # A 90-degree rotation about the centre maps pixel centres to pixel centres: the warped image is
    # exactly torch.rot90 of the (flipped) image.
    images = torch.rand(3, 3, 16, 16)
    crops = crops_of([False, True, True], [90.0, 0.0, 90.0], [[4, 2], [0, 8], [8, 3]])
    cropped = CrossInstanceCycle(crop_size=8).crop(images, crops)
    flipped = torch.flip(images, dims=[-1])
    expected = [torch.rot90(images[0], -1, dims=(-2, -1))[:, 2:10, 4:12], flipped[1][:, 8:16, 0:8],
                torch.rot90(flipped[2], -1, dims=(-2, -1))[:, 3:11, 8:16]]
    for crop, reference in zip(cropped, expected):
        assert torch.allclose(crop, reference, atol=1e-5)


def coordinate_image(batch: int, size: int) -> torch.Tensor:
    """(batch, 3, size, size): channels x and y of each pixel's centre (continuous coordinates), and 0."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing='ij')
    return torch.stack([xs, ys, torch.zeros_like(xs)])[None].repeat(batch, 1, 1, 1)


def test_centre_label_is_where_the_crop_pixels_came_from():
    torch.manual_seed(0)
    size, crop_size, stride = 96, 64, 16
    cycle = CrossInstanceCycle(crop_size=crop_size, rotation=10.0, flip_prob=0.5)
    attention = torch.randn(8, 4, 3, 3)
    crops = cycle.sample_crops(attention, (size, size), torch.Generator().manual_seed(1))
    assert crops.flips.any() and not crops.flips.all() and crops.angles.abs().max() > math.radians(3)
    assert crops.angles.abs().max() <= math.radians(10)
    crop = cycle.crop(coordinate_image(8, size), crops)  # (8, 3, 64, 64): source x, y per crop pixel
    labels = cycle.labels(crops, (crop_size // stride, crop_size // stride), (size, size))  # (8, 16, 2)
    # the crop's value at each cell centre, between its four middle pixels (exact: the values are affine)
    rows = torch.arange(crop_size // stride) * stride + stride // 2
    at_centres = (crop[:, :2, rows - 1][..., rows - 1] + crop[:, :2, rows - 1][..., rows]
                  + crop[:, :2, rows][..., rows - 1] + crop[:, :2, rows][..., rows]) / 4  # (8, 2, 4, 4)
    at_centres = at_centres.flatten(2).transpose(1, 2)
    inside = ((labels > 1) & (labels < size - 1)).all(dim=2)  # away from the zero padding
    assert inside.float().mean() > 0.8
    assert torch.allclose(at_centres[inside], labels[inside], atol=1e-3)

    corner = CrossInstanceCycle(crop_size=crop_size, label='corner').labels(crops, (4, 4), (size, size))
    first_pixels = crop[:, :2, rows - stride // 2][..., rows - stride // 2].flatten(2).transpose(1, 2) - 0.5
    inside = ((corner > 1) & (corner < size - 2)).all(dim=2)
    assert inside.float().mean() > 0.8
    assert torch.allclose(first_pixels[inside], corner[inside], atol=1e-3)


def test_crop_is_centred_on_the_attention_peak_and_kept_inside():
    # 2 x 2 attention cells of 32 pixels on a 64-pixel image. Cells (x, y) features (1, 1), (1, -1),
    # (1, 0.2) and (1, 0): the mean is (1, 0.05), closest in angle to (1, 0), the peak.
    others = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 0.2]])
    features = torch.zeros(2, 2, 4)
    features[0, :, [0, 1, 3]], features[0, :, 2] = others.T, torch.tensor([1.0, 0.0])  # peak: row 1, col 0
    features[1, :, [0, 2, 3]], features[1, :, 1] = others.T, torch.tensor([1.0, 0.0])  # peak: row 0, col 1
    features = features.view(2, 2, 2, 2)
    assert attention_map(features).flatten(1).argmax(1).tolist() == [2, 1]
    for crop_size, expected in ((32, [[0, 32], [32, 0]]), (48, [[0, 16], [16, 0]])):
        cycle = CrossInstanceCycle(crop_size=crop_size, rotation=0.0, flip_prob=0.0)
        crops = cycle.sample_crops(features, (64, 64))
        # peaks at cell centres (16, 48) and (48, 16); origin = centre - crop / 2, clamped to [0, 64 - crop]
        assert crops.origins.tolist() == expected
    flipped = CrossInstanceCycle(crop_size=32, rotation=0.0, flip_prob=1.0).sample_crops(features, (64, 64))
    assert flipped.origins.tolist() == [[32, 32], [0, 0]]  # x -> 64 - x
    # with a rotation the centre moves by the warp whose inverse samples the crop
    points, flips, angles = torch.rand(4, 5, 2) * 64, torch.tensor([True, False, True, False]), torch.randn(4)
    assert torch.allclose(unwarp_points(warp_points(points, flips, angles, (48, 64)), flips, angles, (48, 64)),
                          points, atol=1e-4)


def test_attention_normalisation_per_image_or_batch_gives_the_same_crops():
    features = torch.randn(4, 8, 3, 3) * torch.tensor([1.0, 5.0, 0.2, 2.0]).view(4, 1, 1, 1)
    per_image, batch = attention_map(features, True), attention_map(features, False)
    assert torch.allclose(per_image.flatten(1).amax(1), torch.ones(4))
    assert batch.flatten(1).amax(1).min() < 1  # only one image reaches 1 over the batch
    crops = [CrossInstanceCycle(crop_size=32, per_image_attention=flag).sample_crops(
        features, (96, 96), torch.Generator().manual_seed(3)) for flag in (True, False)]
    assert all(torch.equal(a, b) for a, b in zip(*crops))


def test_identical_images_give_a_near_zero_loss_and_unrelated_ones_do_not():
    torch.manual_seed(0)
    net = PatchNet()
    images, others = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)
    cycle = CrossInstanceCycle(crop_size=32, rotation=0.0, flip_prob=0.0, temperature=0.0007)
    same = cycle(net, images, images)
    assert same['cycle_mse'] < 1e-3
    assert torch.allclose(same['loss_cycle'], 5e-4 * same['cycle_mse'])
    assert cycle(net, images, others)['cycle_mse'] > 100  # a random walk lands cells away


def test_reference_corner_label_is_off_by_half_a_cell():
    # The perfect walk predicts each crop cell's source cell centre; the reference-style label is the
    # cell's first pixel: 8 pixels (half of a 16-pixel cell) off in x and in y, MSE 8^2 = 64.
    torch.manual_seed(0)
    net, images = PatchNet(), torch.randn(4, 3, 64, 64)
    corner = CrossInstanceCycle(crop_size=32, rotation=0.0, flip_prob=0.0, label='corner')
    assert abs(float(corner(net, images, images)['cycle_mse']) - 64.0) < 1e-2


def test_walk_with_a_flat_temperature_predicts_the_mean_cell_centre():
    cycle = CrossInstanceCycle(temperature=1e6)
    features = [torch.nn.functional.normalize(torch.randn(2, 8, *size), dim=1) for size in ((2, 2), (3, 3), (5, 4))]
    prediction = cycle.walk(*features, image_size=(80, 64))  # source map 5 x 4: cells of 16 pixels
    assert torch.allclose(prediction, torch.tensor([32.0, 40.0]).expand(2, 4, 2), atol=1e-3)


def test_gradients_reach_the_backbone_but_not_through_the_attention():
    torch.manual_seed(0)
    backbone = ResNet(depth=18, zero_init_residual=False)
    cycle = CrossInstanceCycle(crop_size=32, temperature=0.05)
    losses = cycle(backbone, torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    losses['loss_cycle'].backward()
    assert not losses['cycle_mse'].requires_grad
    assert backbone.conv1.weight.grad.abs().sum() > 0
    assert backbone.layer3[1].conv2.weight.grad.abs().sum() > 0
    # layer4 only gives the attention (detached), and the target and crop forwards stop after layer3
    assert all(param.grad is None for param in backbone.layer4.parameters())
    (features,) = layer_outputs(backbone, torch.randn(1, 3, 64, 64), ['layer4'])
    assert features.requires_grad and not attention_map(features).requires_grad


def test_hyperpixels_are_the_pair_matchers():
    from sfc_plugin.correspondence.matching import FeatureExtractor

    torch.manual_seed(0)
    backbone = ResNet(depth=18, zero_init_residual=False).eval()
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    layers = ['layer2', 'layer1.1', 'layer3']
    expected = FeatureExtractor(backbone, layers=layers)(image).features
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        features = hyperpixels(layer_outputs(backbone, tensor, layers))[0]
    assert features.shape == expected.shape == (128 + 64 + 256, 8, 6)
    assert torch.allclose(features, expected, atol=1e-5)


def test_unknown_layer_is_named():
    with pytest.raises(ValueError, match='no submodule layer9'):
        CrossInstanceCycle(walk_layer='layer9', crop_size=32)(PatchNet(), torch.zeros(1, 3, 64, 64),
                                                              torch.zeros(1, 3, 64, 64))


class TwoViewStub:
    """Stands for a two-view dataset: item i has constant views of value i."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, 3, 8, 8), index, dtype=torch.uint8),
                    data_samples=BaseDataElement(metainfo=dict(index=index)))


def write_category_folders(root) -> None:
    for category, names in (('apple', ['astronaut', 'coffee', 'chelsea']), ('pear', ['rocket', 'camera'])):
        for name in names:
            write_photo(os.path.join(str(root), category, f'{name}.png'), name, size=(40, 56))


def test_folder_pairs_are_every_ordered_same_category_pair(tmp_path):
    write_category_folders(tmp_path)
    pairs = same_category_pairs(str(tmp_path))
    assert len(pairs) == 3 * 2 + 2 * 1
    assert all(os.path.basename(os.path.dirname(path)) == category
               for source, target, category in pairs for path in (source, target))
    assert len(set(pairs)) == len(pairs) and all(source != target for source, target, _ in pairs)


def test_spair_layout_pairs_and_items(tmp_path):
    box = [0, 0, 10, 10]
    make_spair(str(tmp_path), [spair_record('2008_000001', '2008_000002', 'cat', [[1, 1]], [[2, 2]], box, box),
                               spair_record('2009_000003', '2008_000002', 'cat', [[1, 1]], [[2, 2]], box, box),
                               spair_record('2010_000004', '2010_000005', 'dog', [[1, 1]], [[2, 2]], box, box)],
               split='val')
    pairs = same_category_pairs(str(tmp_path), split='val')
    image = os.path.join(str(tmp_path), 'JPEGImages')
    assert pairs[1] == (os.path.join(image, 'cat', '2009_000003.jpg'), os.path.join(image, 'cat', '2008_000002.jpg'),
                        'cat')
    assert [category for _, _, category in pairs] == ['cat', 'cat', 'dog']
    exact = dict(spair_record('2011_000006', '2011_000007', 'cow', [[1, 1]], [[2, 2]], box, box), kind='exact')
    make_spair(str(tmp_path / 'mixed'), [spair_record('2008_000001', '2008_000002', 'cat', [], [], box, box), exact],
               split='trn')
    assert [category for _, _, category in same_category_pairs(str(tmp_path / 'mixed'), split='trn')] == ['cat']

    with open(os.path.join(str(tmp_path), 'Layout', 'large', 'trn.txt'), 'w') as file:
        file.write('000001-2008_000001-2008_000009:cat\n')  # the target image is not there
    with pytest.raises(ValueError, match=r'trn.txt: 1 of 1 lines are not pairs'):
        same_category_pairs(str(tmp_path), split='trn')

    dataset = CyclePairDataset(TwoViewStub(7), str(tmp_path), split='val', pair_size=24, seed=0)
    item = dataset[5]
    sample = item['data_samples']
    assert item['inputs'][0, 0, 0, 0] == 5  # the image set is the longer one: in order
    assert sample.pair_images.shape == (2, 3, 24, 24) and sample.pair_images.dtype == torch.uint8
    source, target = sample.pair_paths
    expected = cv2.resize(cv2.cvtColor(cv2.imread(source), cv2.COLOR_BGR2RGB), (24, 24),
                          interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(sample.pair_images[0].permute(1, 2, 0).numpy(), expected)
    assert (source, target, sample.pair_category) in pairs


@pytest.mark.parametrize('num_images, num_pairs', [(7, 3), (3, 7), (4, 4)])
def test_zip_keeps_the_longer_set_in_order_and_permutes_the_shorter(num_images, num_pairs):
    image_indices, pair_indices = zip_indices(num_images, num_pairs, seed=0)
    length = max(num_images, num_pairs)
    longer, shorter = (image_indices, pair_indices) if num_images >= num_pairs else (pair_indices, image_indices)
    assert len(image_indices) == len(pair_indices) == length
    assert longer.tolist() == list(range(length))
    counts = Counter(shorter.tolist())
    assert set(counts) == set(range(min(num_images, num_pairs)))
    assert max(counts.values()) - min(counts.values()) <= 1
    for start in range(0, length - length % len(counts), len(counts)):  # each run through is a permutation
        assert sorted(shorter[start:start + len(counts)].tolist()) == list(range(len(counts)))
    assert np.array_equal(zip_indices(num_images, num_pairs, seed=0)[1], pair_indices)
    seeds = {tuple(np.concatenate(zip_indices(num_images, num_pairs, seed))) for seed in range(5)}
    assert len(seeds) > 1  # the seed changes the permutation


def test_held_out_stamps_are_refused(tmp_path):
    folder = tmp_path / 'tuxpaint' / 'stamps' / 'animals'
    write_photo(str(folder / 'birds' / 'a.png'))
    write_photo(str(folder / 'birds' / 'b.png'))
    with pytest.raises(ValueError, match='held out'):
        same_category_pairs(str(folder))
    with pytest.raises(ValueError, match='held out'):
        same_category_pairs(str(tmp_path / 'tuxpaint' / 'stamps'))


def test_beam_search_finds_the_best_additive_set_and_scores_the_beams():
    cost = dict(a=5.0, b=1.0, c=2.0, d=3.0, e=4.0)
    calls = []

    def evaluate(layer_sets):  # lower with more layers, but a and e together are bad
        calls.append(list(layer_sets))
        return [sum(cost[name] for name in s) / len(s) ** 2 + (10.0 if {'a', 'e'} <= set(s) else 0.0)
                for s in layer_sets]

    rows = beam_search(evaluate, list('abcde'), beam=2, max_layers=3)
    assert [len(c) for c in calls] == [5, 7, 5]  # 5 singles; b, c extended (7 distinct); bc, bd extended
    assert all(list(s) == sorted(s) for c in calls for s in c)  # candidates' order
    brute = min(((x, y, z) for x in 'abcde' for y in 'abcde' for z in 'abcde' if x < y < z),
                key=lambda s: evaluate([s])[0])
    assert best_row(rows)['layers'] == list(brute) == ['b', 'c', 'd']


def test_layer_search_on_a_tiny_backbone_is_deterministic():
    torch.manual_seed(0)
    backbone = ResNet(depth=18, zero_init_residual=False).eval()
    images = torch.randn(3, 2, 3, 64, 64)
    cycle = CrossInstanceCycle(attention_layer='layer4', crop_size=32)
    runs = [search_layers(backbone, cycle, images, ['layer1', 'layer2', 'layer3'], beam=2, max_layers=2,
                          batch_size=2, progress=False) for _ in range(2)]
    assert runs[0] == runs[1]
    assert [row['step'] for row in runs[0]] == [1, 1, 1, 2, 2, 2]
    best = best_row(runs[0])
    assert set(best['layers']) <= {'layer1', 'layer2', 'layer3'} and best['loss'] >= 0


def test_moco_with_cycle_trains_on_cycle_pairs(tmp_path, real_image_dir):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    write_category_folders(tmp_path / 'pairs')
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.train_dataloader.dataset.dataset.data_root = real_image_dir
    cfg.train_dataloader.dataset.pairs_root = str(tmp_path / 'pairs')
    cfg.train_dataloader.dataset.pair_size = 64
    cfg.model.cycle.crop_size = 32
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        from sfc_plugin.registry import DATASETS
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        model = MODELS.build(cfg.model)
    batch = model.data_preprocessor(pseudo_collate([dataset[index] for index in range(4)]), training=True)
    losses = model.loss(**batch)
    assert {'loss_moco', 'loss_cycle', 'cycle_mse'} <= set(losses)
    assert torch.isfinite(losses['loss_cycle'])
    losses['loss_cycle'].backward()
    assert model.backbone.conv1.weight.grad is not None
    assert all(param.grad is None for param in model.key_backbone.parameters())


@pytest.mark.slow
def test_search_layers_tool(tmp_path):
    write_category_folders(tmp_path / 'pairs')
    out = tmp_path / 'layers.json'
    result = subprocess.run(
        [sys.executable, 'tools/search_layers.py', TINY_CONFIG, '--images', str(tmp_path / 'pairs'),
         '--candidates', 'layer1', 'layer2', 'layer3', '--beam', '1', '--max-layers', '2', '--max-pairs', '4',
         '--pair-size', '64', '--crop-size', '32', '--prefix', 'semantic.', '--out', str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record['num_pairs'] == 4 and len(record['rows']) == 3 + 2
    assert record['layers'][0].startswith('semantic.') and 'chosen:' in result.stdout
