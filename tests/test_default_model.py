"""The shipped default model: its checkpoint, its features, and a short run of its training recipe."""
import ast
import os

import pytest
import torch

from conftest import REPO_ROOT
from sfc_plugin.apis import train
from sfc_plugin.generators.offline_data import write_fc_training_set
from sfc_plugin.apis.inference import build_model
from sfc_plugin.models import ResNet
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CHECKPOINT, DEFAULT_MODEL_CONFIG

OFFLINE_CONFIG = os.path.join(REPO_ROOT, 'configs', 'fc', 'fc_r18_1xb16-800it_offline-cpu.py')
SECOND_STAGE_CONFIG = os.path.join(REPO_ROOT, 'configs', 'fc', 'fc_r18_1xb16-300it_offline-v4-cpu.py')


def test_checkpoint_is_small_safe_and_complete():
    assert os.path.getsize(DEFAULT_MODEL_CHECKPOINT) <= 12 * 2 ** 20
    checkpoint = torch.load(DEFAULT_MODEL_CHECKPOINT, map_location='cpu', weights_only=True)
    expected = ResNet(depth=18, strides=(1, 2, 1), num_stages=3).state_dict()
    assert sorted(checkpoint['state_dict']) == sorted(f'backbone.fine_grained.{key}' for key in expected)
    assert checkpoint['meta']['layout'] == 'fc_plugin'


def test_default_model_features_match_better_than_random_init():
    from skimage import data

    from sfc_plugin.correspondence.stereo import stereo_pck
    left, right, disparity = data.stereo_motorcycle()
    left, right, disparity = left[::2, ::2], right[::2, ::2], disparity[::2, ::2] / 2  # half size: fast
    default, _ = build_model(DEFAULT_MODEL_CONFIG)
    assert default.backbone.stride == 8
    torch.manual_seed(0)
    random_init, _ = build_model(DEFAULT_MODEL_CONFIG, cfg_options={
        'model.backbone.semantic.pretrained': False, 'model.backbone.fine_grained.init_cfg': None})
    trained_pck = stereo_pck(default.backbone, left, right, disparity, (8,))[8]
    random_pck = stereo_pck(random_init.backbone, left, right, disparity, (8,))[8]
    assert trained_pck > random_pck + 0.15, (trained_pck, random_pck)


@pytest.mark.slow
def test_short_offline_training_is_reproducible(tmp_path):
    data_root = str(tmp_path / 'fc_offline')
    list_path = write_fc_training_set(data_root, photo_max_side=128)
    assert len(open(list_path).read().split()) == 12 + 125  # skimage photos + bikes.mp4 frames 0-124
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}', 'train_cfg.max_iters=2',
               'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', 'randomness.deterministic=True',
               'train_dataloader.dataset.pipeline.1.size=64']
    for run in ('a', 'b'):
        train([OFFLINE_CONFIG, '--work-dir', str(tmp_path / run)] + options)
    first = torch.load(tmp_path / 'a' / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    second = torch.load(tmp_path / 'b' / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_runtime_benchmark_measures_the_default_model(tmp_path, monkeypatch):
    from sfc_plugin.benchmarks import runtime as benchmark
    calls = []
    monkeypatch.setattr(benchmark, 'run_benchmark', lambda config, checkpoint, *args, **kwargs: calls.append(
        (config, checkpoint)) or {'model': config})
    benchmark.main(['--out', str(tmp_path / 'report.json'), '--memory-frames'])
    (config, checkpoint), = calls
    assert config == DEFAULT_MODEL_CONFIG
    model, _ = build_model(config, checkpoint)  # what the benchmark's backends build from the pair
    assert model.backbone.fine_grained_weight == 0.75 and model.backbone.semantic.out_block == 4


def test_second_stage_warm_layers_learn_at_a_tenth_of_the_rate():
    """The shipped second stage (v4): the online stem..layer3 (what the fused model keeps) at lr 1e-4, the
    fresh layer4 and heads at 1e-3; nothing of the target network is optimised."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from sfc_plugin import registry
    cfg = Config.fromfile(SECOND_STAGE_CONFIG)
    model = registry.MODELS.build(cfg.model.to_dict())
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr_of = {id(param): group['lr'] for group in optim_wrapper.optimizer.param_groups for param in group['params']}
    warm = ('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.', 'backbone.layer2.', 'backbone.layer3.')
    trained = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert name.startswith('target_'), name
            continue
        trained += 1
        assert lr_of[id(param)] == pytest.approx(1e-4 if name.startswith(warm) else 1e-3), name
    assert trained == len(list(model.backbone.parameters())) + len(list(model.projector.parameters())) + len(
        list(model.predictor.parameters()))


@pytest.mark.parametrize('path', [OFFLINE_CONFIG, SECOND_STAGE_CONFIG])
def test_recipe_stages_inherit_only_base_files(path):
    """Each shipped stage reads in one pass: no chain through experiment configs."""
    assignment, = [node for node in ast.parse(open(path).read()).body
                   if isinstance(node, ast.Assign) and node.targets[0].id == '_base_']
    bases = [os.path.normpath(os.path.join(os.path.dirname(path), base)) for base in ast.literal_eval(assignment.value)]
    assert bases and all(base.startswith(os.path.join(REPO_ROOT, 'configs', '_base_') + os.sep) for base in bases)
