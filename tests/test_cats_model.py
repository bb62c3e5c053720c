"""CATsMatchingModel: the learned matcher moves points by its flow, evaluation sees exactly the training
features, the losses (supervised, SemiMatch), sfc-match's loading, training through tools/train.py
with an exact resume and on two gloo processes."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO_ROOT, free_port
from pair_fixtures import make_spair, spair_record
from sfc_plugin.apis import train
from sfc_plugin.correspondence.cats import hyperpixel_maps
from sfc_plugin.correspondence.cats_model import CATsMatchingModel
from sfc_plugin.correspondence.cli import load_pair_model
from sfc_plugin.correspondence.matching import FeatureMap
from sfc_plugin.correspondence.training_data import PairTrainingDataset, pair_training_collate
from train_helpers import SimulatedCrash

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'cats', 'cats-lite_r18_tiny_cpu.py')


def tiny_model(**overrides) -> CATsMatchingModel:
    torch.manual_seed(0)
    settings = dict(backbone=dict(type='ResNet', depth=18), layers=['layer1', 'layer2', 'layer3'], grid=4,
                    image_size=64, aggregator=dict(projection_dim=8, heads=2, mlp_ratio=2.0), label_box=8.75)
    settings.update(overrides)
    return CATsMatchingModel(**settings).eval()


def one_hot_map(model: CATsMatchingModel, cell_to_channel, image_size) -> FeatureMap:
    """A FeatureMap whose cell k has, in every layer, the one-hot feature of channel cell_to_channel[k]."""
    grid = model.grid
    layers = []
    for channels in model.layer_channels:
        layer = torch.zeros(channels, grid * grid)
        layer[torch.as_tensor(cell_to_channel), torch.arange(grid * grid)] = 1
        layers.append(layer.view(channels, grid, grid))
    return FeatureMap(F.normalize(torch.cat(layers), dim=0), image_size)


def shifted_pair(model: CATsMatchingModel):
    """Source 80x48 and target 100x36 one-hot maps where every source cell moves one cell right."""
    cells = np.arange(16).reshape(4, 4)
    source = one_hot_map(model, cells.ravel(), (48, 80))
    # target cell (i, j) looks like source cell (i, j - 1) (cyclic)
    target = one_hot_map(model, np.roll(cells, 1, axis=1).ravel(), (36, 100))
    return source, target


def expected_one_cell_right(points: np.ndarray) -> np.ndarray:
    source_cells = (points + 0.5) / [80, 48] * 4 - 0.5
    return (source_cells + [1, 0] + 0.5) * [100 / 4, 36 / 4] - 0.5


def test_learned_matcher_moves_points_by_the_flow():
    model = tiny_model(softmax_temperature=0.01, readout='flow')
    source, target = shifted_pair(model)
    points = np.array([[10.0, 6.0], [25.0, 30.0], [39.0, 40.0]])  # cell x in [0, 1.5]: no wrapped column read
    match = model.matcher(source, target, points)
    np.testing.assert_allclose(match.points, expected_one_cell_right(points), atol=1e-3)
    assert (match.scores > 0.99).all()


def test_row_readout_interpolates_correlation_rows():
    model = tiny_model(softmax_temperature=0.01, readout='row')
    source, target = shifted_pair(model)
    centres = np.array([[9.5, 5.5], [29.5, 29.5], [49.5, 41.5]])  # cell centres (0, 0), (1, 2), (2, 3)
    match = model.matcher(source, target, centres)
    np.testing.assert_allclose(match.points, expected_one_cell_right(centres), atol=1e-3)
    assert (match.scores > 0.99).all()
    # halfway between two cell centres the row is half of each one-hot row: the soft-argmax is their
    # midpoint and no cell holds more than half of the probability
    midpoint = np.array([[19.5, 17.5]])
    match = model.matcher(source, target, midpoint)
    np.testing.assert_allclose(match.points, expected_one_cell_right(midpoint), atol=1e-3)
    np.testing.assert_allclose(match.scores, 0.5, atol=1e-3)


def test_untrained_network_without_mutual_filter_is_the_mean_layer_cosine():
    model = tiny_model(mutual_filter=False)
    generator = torch.Generator().manual_seed(1)
    query = [F.normalize(torch.randn(1, c, 4, 4, generator=generator), dim=1) for c in model.layer_channels]
    reference = [F.normalize(torch.randn(1, c, 4, 4, generator=generator), dim=1) for c in model.layer_channels]
    expected = sum(torch.einsum('cq,cr->qr', q[0].flatten(1), r[0].flatten(1)) for q, r in zip(query, reference))
    np.testing.assert_allclose(model.refine(query, reference)[0].detach().numpy(), (expected / len(query)).numpy(), atol=1e-6)


def test_unknown_readout_is_refused():
    with pytest.raises(ValueError, match='readout'):
        tiny_model(readout='nearest')


def test_evaluation_features_are_the_training_features():
    model = tiny_model()
    image = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    feature_map = model.extractor(image)
    assert feature_map.image_size == (50, 70) and feature_map.features.shape[1:] == (4, 4)
    import cv2
    resized = cv2.resize(image, (64, 64), interpolation=cv2.INTER_LINEAR)
    tensor = torch.from_numpy(resized).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = hyperpixel_maps(model.backbone, tensor, model.layers, 4)
    for got, want in zip(model.split_layers(feature_map.features), expected):
        assert torch.allclose(got, want, atol=1e-5)


def pair_batch(batch: int = 2, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    images = torch.from_numpy((rng.random((batch, 2, 3, 64, 64)) * 255).astype(np.uint8))
    kps = torch.full((batch, 6, 2), float('nan'))
    kps[:, :4] = torch.from_numpy(rng.uniform(8, 56, (batch, 4, 2))).float()
    samples = dict(src_kps=kps, trg_kps=kps + 2, src_bbox=torch.tensor([[0.0, 0.0, 63.0, 63.0]] * batch),
                   trg_bbox=torch.tensor([[0.0, 0.0, 63.0, 63.0]] * batch), labelled=torch.tensor([True, False]))
    return images, samples


def test_supervised_loss_trains_only_the_aggregator_and_is_seeded_by_the_step():
    model = tiny_model().train()
    images, samples = pair_batch()
    losses = model.loss(images, samples)
    assert set(losses) == {'loss_sup'} and losses['loss_sup'] > 0
    losses['loss_sup'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.aggregator.parameters())
    assert int(model.num_steps) == 1
    again = tiny_model().train()
    assert torch.equal(again.loss(images, samples)['loss_sup'], losses['loss_sup'].detach())
    assert not torch.equal(again.loss(images, samples)['loss_sup'], losses['loss_sup'].detach())  # step 1: new draws
    unlabelled = dict(samples, labelled=torch.tensor([False, False]))
    assert tiny_model().train().loss(images, unlabelled)['loss_sup'].item() == 0


def test_semimatch_loss_is_balanced_to_the_supervised_one():
    model = tiny_model(semimatch=dict(p_cutoff=0.0, fb_check=False, keyout=1.0)).train()
    images, samples = pair_batch()
    losses = model.loss(images, samples)
    assert set(losses) == {'loss_sup', 'loss_unsup', 'pseudo_label_share'}
    assert 0 < losses['pseudo_label_share'] <= 1
    assert torch.isclose(losses['loss_unsup'], losses['loss_sup'])
    (losses['loss_sup'] + losses['loss_unsup']).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    with pytest.raises(ValueError, match='unknown semimatch settings'):
        tiny_model(semimatch=dict(p_cut=0.5))


def test_other_matchers_use_the_same_hyperpixels():
    model = tiny_model(matcher=dict(method='nn'))
    assert model.method == 'nn' and type(model.matcher).__name__ == 'PairMatcher'
    model.set_matching(dict(method='cats'))
    assert model.method == 'cats' and type(model.matcher).__name__ == 'CATsFlowMatcher'


def write_pairs(root: str) -> None:
    """A tiny 'trn' split: two labelled pairs and one unlabelled (no keypoints) pair."""
    box = (4, 4, 60, 44)
    records = [spair_record(f'a{i}', f'b{i}', 'cat', [(10 + i, 12), (30, 20 + i), (50, 30)],
                            [(12, 14 + i), (33 + i, 22), (48, 33)], box, box) for i in range(2)]
    records[1]['kind'] = 'exact'
    records.append(spair_record('a9', 'b9', 'cat', [], [], box, box))
    make_spair(root, records, split='trn')


def test_training_dataset_maps_keypoints_with_the_crop(tmp_path):
    write_pairs(str(tmp_path))
    dataset = PairTrainingDataset(dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn',
                                       allow_unlabelled=True), size=32, crop_prob=0.0, max_keypoints=4)
    assert list(dataset.labelled) == [True, True, False]
    batch = pair_training_collate([dataset[0], dataset[2]])
    assert batch['inputs'].shape == (2, 2, 3, 32, 32) and batch['inputs'].dtype == torch.uint8
    kps = batch['data_samples']['src_kps'][0]
    present = kps[torch.isfinite(kps).all(1)]
    expected = (torch.tensor([[10.0, 12], [30, 20], [50, 30]]) + 0.5) * torch.tensor([32 / 64, 32 / 48]) - 0.5
    assert torch.allclose(present[present[:, 0].argsort()], expected)
    assert torch.isnan(batch['data_samples']['src_kps'][1]).all() and not batch['data_samples']['labelled'][1]
    half = PairTrainingDataset(dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn',
                                    allow_unlabelled=True), labelled_fraction=0.5)
    assert half.labelled.sum() == 1
    half_supervised = PairTrainingDataset(dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn',
                                               allow_unlabelled=True), labelled_fraction=0.5, unlabelled=False)
    assert len(half_supervised) == 1 and half_supervised.labelled.all()
    supervised = PairTrainingDataset(dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn',
                                          allow_unlabelled=True), unlabelled=False)
    assert len(supervised) == 2 and supervised.labelled.all()
    exact = PairTrainingDataset(dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn',
                                     allow_unlabelled=True), kinds=['exact'])
    assert [pair['pair_id'] for pair in exact.pairs] == [dataset.pairs[1]['pair_id']]


def test_unmirror_reads_a_mirrored_target_mirrored(tmp_path):
    box = (4, 4, 40, 44)
    record = dict(spair_record('a0', 'b0', 'cat', [(10, 12)], [(12, 14)], box, box), mirrored=1)
    make_spair(str(tmp_path), [record], split='trn')
    options = dict(dataset=dict(type='SPair71kDataset', data_root=str(tmp_path), split='trn'), size=64,
                   crop_prob=0.0, max_keypoints=1)
    plain, unmirrored = PairTrainingDataset(**options)[0], PairTrainingDataset(unmirror=True, **options)[0]
    assert torch.equal(unmirrored['inputs'][0], plain['inputs'][0])  # the source is untouched
    assert torch.equal(unmirrored['inputs'][1], plain['inputs'][1].flip(-1))  # 64 x 48 -> 64: flips commute
    x_plain = plain['data_samples']['trg_kps'][0, 0]
    x_unmirrored = unmirrored['data_samples']['trg_kps'][0, 0]
    assert torch.isclose(x_unmirrored, 63 - x_plain, atol=1e-5)
    assert torch.allclose(unmirrored['data_samples']['trg_bbox'][[0, 2]], 63 - plain['data_samples']['trg_bbox'][[2, 0]],
                          atol=1e-5)


def test_sfc_match_loads_the_learned_model(tmp_path):
    model = load_pair_model(TINY_CONFIG, None, None, 'cpu', {})
    assert isinstance(model, CATsMatchingModel) and model.method == 'cats'
    nn_model = load_pair_model(TINY_CONFIG, None, None, 'cpu', dict(matcher='kernel_soft_argmax'))
    assert nn_model.method == 'kernel_soft_argmax'
    with pytest.raises(ValueError, match='input size it was trained at'):
        load_pair_model(TINY_CONFIG, None, None, 'cpu', dict(max_side=300))


def _write_config(path, extra: str = '') -> str:
    path.write_text(f"_base_ = [{TINY_CONFIG!r}]\n{extra}")
    return str(path)


@pytest.mark.slow
def test_resume_is_exact(tmp_path):
    write_pairs(str(tmp_path / 'pairs'))
    options = ['--cfg-options', f'train_dataloader.dataset.dataset.data_root={tmp_path / "pairs"}',
               'randomness.deterministic=True', 'model.semimatch.p_cutoff=0.0']
    semi = "model = dict(semimatch=dict())\n"
    plain = _write_config(tmp_path / 'plain.py', semi)
    crashing = _write_config(tmp_path / 'crashing.py', semi + "custom_imports = dict(imports=['sfc_plugin', "
                             "'sfc_plugin.correspondence', 'train_helpers'])\n"
                             "custom_hooks = [dict(type='CrashAfterIterHook', at=3)]\n")
    train([plain, '--work-dir', str(tmp_path / 'straight')] + options)
    with pytest.raises(SimulatedCrash):
        train([crashing, '--work-dir', str(tmp_path / 'stopped')] + options)
    assert not os.path.exists(tmp_path / 'stopped' / 'iter_6.pth')
    train([plain, '--work-dir', str(tmp_path / 'stopped'), '--resume'] + options)

    straight = torch.load(tmp_path / 'straight' / 'iter_6.pth', map_location='cpu', weights_only=True)
    resumed = torch.load(tmp_path / 'stopped' / 'iter_6.pth', map_location='cpu', weights_only=True)
    assert int(straight['state_dict']['num_steps']) == 6
    assert straight['state_dict'].keys() == resumed['state_dict'].keys()
    for key, value in straight['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    first = torch.load(tmp_path / 'straight' / 'iter_3.pth', map_location='cpu', weights_only=True)
    assert not torch.equal(first['state_dict']['aggregator.head.weight'], straight['state_dict']['aggregator.head.weight'])
    straight_state, resumed_state = straight['optimizer']['state'], resumed['optimizer']['state']
    assert straight_state.keys() == resumed_state.keys() and straight_state
    for index, state in straight_state.items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed_state[index][name])), name
    assert resumed['meta']['iter'] == 6


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path):
    write_pairs(str(tmp_path / 'pairs'))
    work_dir = tmp_path / 'dist'
    config = _write_config(tmp_path / 'semi.py', "model = dict(semimatch=dict())\n")
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([os.path.join(REPO_ROOT, 'tests'),
                                                                             REPO_ROOT]))
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(free_port()),
         'tools/train.py', config, '--launcher', 'pytorch', '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.dataset.data_root={tmp_path / "pairs"}', 'train_cfg.max_iters=3'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    (log,) = glob.glob(str(work_dir / '*' / '*.log'))
    text = open(log).read()
    assert 'Distributed training: True' in text and 'loss_unsup' in text
    checkpoint = torch.load(work_dir / 'iter_3.pth', map_location='cpu', weights_only=True)
    assert int(checkpoint['state_dict']['num_steps']) == 3
