"""MoCo: InfoNCE against an explicit computation, the momentum key encoder, the queue, shuffle BN,
the cycle hook, conversion to a semantic branch, exact resume and two-process gloo training."""
import copy
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement
from torch import nn

from conftest import REPO_ROOT, free_port
from sfc_plugin.apis import train
from sfc_plugin.models import MoCo, SFCBackbone, TwoViewDataPreprocessor
from sfc_plugin.models.converters import convert_checkpoint_file, detect_layout
from sfc_plugin.models.weight_init import init_weights_quietly
from sfc_plugin.registry import MODELS
from train_helpers import SimulatedCrash

CROP = 32
TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'moco', 'moco_r18_tiny_cpu.py')


def tiny_moco_cfg(**overrides) -> dict:
    cfg = dict(
        type='MoCo',
        backbone=dict(type='ResNet', depth=18),
        head=dict(type='PooledProjectionHead', in_channels=512, out_channels=8, hidden_channels=16),
        loss=dict(type='InfoNCELoss', temperature=0.2),
        queue_len=16,
        momentum=0.9,
        data_preprocessor=dict(type='TwoViewDataPreprocessor', mean=[125.0, 122.0, 114.0],
                               std=[52.0, 51.0, 51.0]))
    cfg.update(overrides)
    return cfg


def build(**overrides) -> MoCo:
    torch.manual_seed(0)
    model = MODELS.build(tiny_moco_cfg(**overrides))
    init_weights_quietly(model)
    return model


def views(batch_size: int = 4, seed: int = 0) -> torch.Tensor:
    """Normalised-looking (B, 2, 3, S, S) view pairs."""
    return torch.randn(batch_size, 2, 3, CROP, CROP, generator=torch.Generator().manual_seed(seed))


def params(module: nn.Module) -> list:
    return [p.detach().clone() for p in module.parameters()]


def test_info_nce_against_an_explicit_loop():
    generator = torch.Generator().manual_seed(0)
    query = F.normalize(torch.randn(5, 8, generator=generator), dim=1)
    key = F.normalize(torch.randn(5, 8, generator=generator), dim=1)
    queue = F.normalize(torch.randn(8, 12, generator=generator), dim=0)
    loss_module = MODELS.build(dict(type='InfoNCELoss', temperature=0.07, loss_weight=2.0))
    loss = loss_module(loss_module.logits(query, key, queue))

    q, k, n = query.double().numpy(), key.double().numpy(), queue.double().numpy()
    total = 0.0
    for i in range(5):
        logits = [q[i] @ k[i] / 0.07] + [q[i] @ n[:, j] / 0.07 for j in range(12)]
        log_softmax = logits[0] - np.log(np.sum(np.exp(logits)))
        total -= log_softmax
    assert loss.item() == pytest.approx(2.0 * total / 5, rel=1e-5)
    with pytest.raises(ValueError, match='temperature'):
        MODELS.build(dict(type='InfoNCELoss', temperature=0.0))


def test_pooled_projection_head():
    linear = MODELS.build(dict(type='PooledProjectionHead', in_channels=6, out_channels=3))
    features = torch.randn(2, 6, 4, 5)
    expected = features.mean(dim=(2, 3)) @ linear.fc.weight.t() + linear.fc.bias
    assert torch.allclose(linear(features), expected, atol=1e-6)
    mlp = MODELS.build(dict(type='PooledProjectionHead', in_channels=6, out_channels=3, hidden_channels=10))
    assert sorted(mlp.state_dict()) == ['fc.0.bias', 'fc.0.weight', 'fc.2.bias', 'fc.2.weight']  # MoCo v2's names


def test_momentum_update_and_no_key_gradient():
    model = build()
    assert all(torch.equal(a, b) for a, b in zip(params(model.backbone), params(model.key_backbone)))
    assert all(not p.requires_grad for p in list(model.key_backbone.parameters()) + list(model.key_head.parameters()))
    # make the two encoders differ, so that the update formula is visible
    with torch.no_grad():
        for param in model.key_head.parameters():
            param.add_(1.0)
    optim_wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.5))
    data = dict(inputs=[torch.randint(0, 256, (2, 3, CROP, CROP), dtype=torch.uint8) for _ in range(4)],
                data_samples=[BaseDataElement() for _ in range(4)])
    for _ in range(2):
        query_before = params(model.backbone) + params(model.head)
        key_before = params(model.key_backbone) + params(model.key_head)
        log_vars = model.train_step(data, optim_wrapper)
        key_after = params(model.key_backbone) + params(model.key_head)
        for before_k, before_q, after_k in zip(key_before, query_before, key_after):
            assert torch.allclose(after_k, 0.9 * before_k + 0.1 * before_q, atol=1e-6)
        assert any(not torch.equal(a, b) for a, b in zip(query_before, params(model.backbone)))  # SGD stepped
        assert all(p.grad is None for p in model.key_backbone.parameters())
        assert 0.0 <= log_vars['accuracy_moco'].item() <= 1.0 and np.isfinite(log_vars['loss'].item())
    assert int(model.num_steps) == 2 and int(model.queue_ptr) == 8


def test_queue_enqueue_wraps_and_checks_the_batch():
    model = build(queue_len=8)
    keys = [F.normalize(torch.randn(4, 8), dim=1) for _ in range(3)]
    initial = model.queue.clone()
    assert torch.allclose(initial.norm(dim=0), torch.ones(8))  # L2-normalised random start
    model.enqueue(keys[0])
    assert torch.equal(model.queue[:, :4], keys[0].t()) and torch.equal(model.queue[:, 4:], initial[:, 4:])
    assert int(model.queue_ptr) == 4
    model.enqueue(keys[1])
    assert int(model.queue_ptr) == 0  # wrapped at K
    model.enqueue(keys[2])  # overwrites the oldest keys
    assert torch.equal(model.queue[:, :4], keys[2].t()) and torch.equal(model.queue[:, 4:], keys[1].t())
    with pytest.raises(ValueError, match='multiple of the keys enqueued per step, 3'):
        model.enqueue(keys[0][:3])
    state = model.state_dict()
    assert {'queue', 'queue_ptr', 'num_steps'} <= set(state)  # in the checkpoint


def test_loss_uses_the_queue_then_enqueues_the_keys():
    model = build()
    inputs = views()
    queue_before = model.queue.clone()
    expected_query = F.normalize(copy.deepcopy(model.head)(copy.deepcopy(model.backbone)(inputs[:, 0])), dim=1)
    losses = model(inputs, mode='loss')
    # keys: the updated key encoder on the key views (bn_splits=1: the shuffle leaves BN statistics as they are)
    expected_keys = F.normalize(copy.deepcopy(model.key_head)(copy.deepcopy(model.key_backbone)(inputs[:, 1])), dim=1)
    assert torch.allclose(model.queue[:, :4], expected_keys.t(), atol=1e-5)
    logits = torch.cat([(expected_query * expected_keys).sum(1, keepdim=True), expected_query @ queue_before], 1) / 0.2
    assert losses['loss_moco'].item() == pytest.approx(F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)).item(),
                                                       rel=1e-4)
    assert losses['accuracy_moco'].item() == (logits.argmax(1) == 0).float().mean().item()


def test_shuffle_bn_on_one_process():
    model = build(bn_splits=2)
    inputs = views()
    order = model.shuffle_permutation(4)  # the permutation of step 0
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert torch.equal(order, model.shuffle_permutation(4))  # a function of (seed, step): resumable
    model(inputs, mode='loss')
    key_backbone, key_head = copy.deepcopy(model.key_backbone), copy.deepcopy(model.key_head)
    with torch.no_grad():
        shuffled = inputs[order, 1]
        groups = [F.normalize(key_head(key_backbone(chunk)), dim=1) for chunk in (shuffled[:2], shuffled[2:])]
        whole = F.normalize(key_head(key_backbone(inputs[:, 1])), dim=1)
    expected = torch.empty(4, 8)
    expected[order] = torch.cat(groups)  # each key from its BN group, back in the batch order
    assert torch.allclose(model.queue[:, :4], expected.t(), atol=1e-5)
    assert not torch.allclose(model.queue[:, :4], whole.t(), atol=1e-3)  # the groups' statistics differ
    with pytest.raises(ValueError, match='bn_splits=2'):
        model(views(batch_size=3), mode='loss')


def test_forward_modes():
    model = build().eval()
    inputs = views(batch_size=2)
    with torch.no_grad():
        pairs = model(inputs, mode='tensor')
        single = model(inputs[:, 0], mode='tensor')
    assert pairs.shape == (2, 2, 512, 1, 1) and torch.allclose(pairs[:, 0], single, atol=1e-5)
    with pytest.raises(ValueError, match='mode'):
        model(inputs, mode='predict')
    with pytest.raises(ValueError, match=r'\(B, 2, 3, S, S\)'):
        model(inputs[:, 0], mode='loss')


@MODELS.register_module(force=True)
class FakeCycle(nn.Module):
    """Stands in for CrossInstanceCycle: records its call and returns a loss of the backbone's features."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.calls = []

    def forward(self, backbone, source, target):
        self.calls.append((backbone, source.detach().clone(), target.detach().clone()))
        difference = backbone(source) - backbone(target)
        return dict(loss_cycle=self.loss_weight * difference.pow(2).mean())


def test_cycle_term_gets_the_query_backbone_and_normalised_pairs():
    model = build(cycle=dict(type='FakeCycle', loss_weight=3.0))
    generator = torch.Generator().manual_seed(1)
    pairs = [torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8, generator=generator) for _ in range(4)]
    data = dict(inputs=[torch.randint(0, 256, (2, 3, CROP, CROP), dtype=torch.uint8, generator=generator)
                        for _ in range(4)],
                data_samples=[BaseDataElement(pair_images=pair) for pair in pairs])
    batch = model.data_preprocessor(data, training=True)
    losses = model(batch['inputs'], batch['data_samples'], mode='loss')
    assert set(losses) == {'loss_moco', 'accuracy_moco', 'loss_cycle'}
    (backbone, source, target), = model.cycle.calls
    assert backbone is model.backbone
    mean = torch.tensor([125.0, 122.0, 114.0]).view(3, 1, 1)
    std = torch.tensor([52.0, 51.0, 51.0]).view(3, 1, 1)
    assert source.shape == (4, 3, 24, 24)
    assert torch.allclose(source[2], (pairs[2][0].float() - mean) / std)
    assert torch.allclose(target[3], (pairs[3][1].float() - mean) / std)
    losses['loss_cycle'].backward()  # gradients reach the query backbone, never the key encoder
    assert model.backbone.conv1.weight.grad is not None and model.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.key_backbone.parameters())
    with pytest.raises(ValueError, match='pair_images'):
        model(batch['inputs'], [BaseDataElement() for _ in range(4)], mode='loss')


def test_preprocessor_rejects_a_bad_pair():
    preprocessor = TwoViewDataPreprocessor()
    data = dict(inputs=[torch.zeros(2, 3, 8, 8, dtype=torch.uint8)],
                data_samples=[BaseDataElement(pair_images=torch.zeros(3, 8, 8, dtype=torch.uint8))])
    with pytest.raises(ValueError, match='pair_images'):
        preprocessor(data)


def test_trained_checkpoint_becomes_a_semantic_branch(tmp_path):
    model = build()
    model(views(), mode='loss')  # a training step: key encoder and queue differ from the query encoder
    checkpoint = tmp_path / 'moco.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), checkpoint)
    assert detect_layout(torch.load(checkpoint, weights_only=True)) == 'moco_plugin'

    # the converter: the query backbone, cut after layer3, under the SFCBackbone prefix
    converted = tmp_path / 'semantic.pth'
    meta = convert_checkpoint_file(str(checkpoint), str(converted), num_stages=3, prefix='backbone.semantic.')
    assert meta['layout'] == 'moco_plugin' and meta['depth'] == 18
    state = torch.load(converted, weights_only=True)['state_dict']
    assert torch.equal(state['backbone.semantic.layer3.1.conv2.weight'], model.backbone.layer3[1].conv2.weight)
    assert not any('layer4' in key or 'key_' in key or 'queue' in key for key in state)

    # or directly: StrictPretrained with the prefix backbone. into the semantic branch
    sfc = SFCBackbone(semantic=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3, init_cfg=dict(
        type='sfc_plugin.StrictPretrained', checkpoint=str(checkpoint), prefix='backbone.')))
    init_weights_quietly(sfc)
    assert torch.equal(sfc.semantic.layer2[0].conv1.weight, model.backbone.layer2[0].conv1.weight)
    assert torch.equal(sfc.semantic.bn1.running_mean, model.backbone.bn1.running_mean)


def test_efficientnet_moco_loads_into_the_semantic_branch(tmp_path):
    backbone = dict(type='EfficientNetLite', arch='lite0', out_block=15, pretrained=False)
    model = build(backbone=backbone, head=dict(type='PooledProjectionHead', in_channels=320, out_channels=8))
    with torch.no_grad():
        model.backbone._blocks[3]._project_conv.weight.add_(1.0)
    checkpoint = tmp_path / 'moco_effl0.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    semantic = MODELS.build(dict(type='EfficientNetLite', arch='lite0', out_block=4, pretrained=False, init_cfg=dict(
        type='sfc_plugin.StrictPretrained', checkpoint=str(checkpoint), prefix='backbone.')))
    init_weights_quietly(semantic)
    assert torch.equal(semantic._blocks[3]._project_conv.weight, model.backbone._blocks[3]._project_conv.weight)


def test_init_from_a_published_moco_checkpoint(tmp_path):
    """The fine-tuning config's init_cfg: query backbone and fc head from ``module.encoder_q.*``."""
    source = build(head=dict(type='PooledProjectionHead', in_channels=512, out_channels=8))
    state = {f'module.encoder_q.{key}': value + 0.5 for key, value in source.backbone.state_dict().items()
             if value.is_floating_point()}
    state.update({f'module.encoder_q.{key}': value for key, value in source.head.state_dict().items()})
    state.update({f'module.encoder_k.{key}': value for key, value in source.backbone.state_dict().items()})
    state['module.queue'] = torch.randn(8, 16)
    published = tmp_path / 'moco_v1_200ep_pretrain.pth.tar'
    torch.save(dict(epoch=200, arch='resnet18', state_dict=state), published)
    init = dict(type='sfc_plugin.StrictPretrained', checkpoint=str(published), prefix='module.encoder_q.')
    model = build(backbone=dict(type='ResNet', depth=18, init_cfg=init),
                  head=dict(type='PooledProjectionHead', in_channels=512, out_channels=8, init_cfg=dict(
                      init, ignore_unexpected=('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.'))))
    assert torch.equal(model.backbone.layer3[0].conv1.weight, state['module.encoder_q.layer3.0.conv1.weight'])
    assert torch.equal(model.head.fc.weight, state['module.encoder_q.fc.weight'])
    assert torch.equal(model.key_backbone.layer3[0].conv1.weight, model.backbone.layer3[0].conv1.weight)
    assert torch.equal(model.key_head.fc.bias, model.head.fc.bias)


def _write_config(path, base: str, extra: str = '') -> str:
    path.write_text(f"_base_ = [{base!r}]\n{extra}")
    return str(path)


@pytest.mark.slow
def test_resume_is_exact(tmp_path, real_image_dir):
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={real_image_dir}',
               'train_cfg.max_iters=6', 'param_scheduler.0.T_max=6', 'param_scheduler.0.end=6',
               'default_hooks.checkpoint.interval=3', 'default_hooks.checkpoint.max_keep_ckpts=5',
               'train_dataloader.dataset.pipeline.1.size=32', 'randomness.deterministic=True']
    plain = _write_config(tmp_path / 'plain.py', TINY_CONFIG)
    crashing = _write_config(
        tmp_path / 'crashing.py', TINY_CONFIG,
        "custom_imports = dict(imports=['sfc_plugin', 'train_helpers'])\n"
        "custom_hooks = [dict(type='CrashAfterIterHook', at=3)]\n")

    train([plain, '--work-dir', str(tmp_path / 'straight')] + options)
    with pytest.raises(SimulatedCrash):
        train([crashing, '--work-dir', str(tmp_path / 'stopped')] + options)
    assert not os.path.exists(tmp_path / 'stopped' / 'iter_6.pth')
    train([plain, '--work-dir', str(tmp_path / 'stopped'), '--resume'] + options)

    straight = torch.load(tmp_path / 'straight' / 'iter_6.pth', map_location='cpu', weights_only=True)
    resumed = torch.load(tmp_path / 'stopped' / 'iter_6.pth', map_location='cpu', weights_only=True)
    assert straight['state_dict'].keys() == resumed['state_dict'].keys()
    assert int(straight['state_dict']['queue_ptr']) == 6 * 8 % 64 and int(straight['state_dict']['num_steps']) == 6
    for key, value in straight['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    straight_state, resumed_state = straight['optimizer']['state'], resumed['optimizer']['state']
    assert straight_state.keys() == resumed_state.keys() and straight_state
    for index, state in straight_state.items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed_state[index][name])), name
    assert resumed['meta']['iter'] == 6


@pytest.mark.slow
def test_two_process_gloo_training_keeps_one_queue(tmp_path, real_image_dir):
    config = _write_config(
        tmp_path / 'dist.py', TINY_CONFIG,
        "custom_imports = dict(imports=['sfc_plugin', 'moco_helpers'])\n"
        "custom_hooks = [dict(type='SaveQueuePerRankHook')]\n")
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([os.path.join(REPO_ROOT, 'tests'), REPO_ROOT]))
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
         '--master_port', str(free_port()), 'tools/train.py', config, '--launcher', 'pytorch',
         '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={real_image_dir}', 'train_cfg.max_iters=3',
         'train_dataloader.dataset.pipeline.1.size=32', 'default_hooks.checkpoint.interval=3'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    (log,) = glob.glob(str(work_dir / '*' / '*.log'))
    assert 'Distributed training: True' in open(log).read()
    rank0 = torch.load(work_dir / 'queue_rank0.pth', weights_only=True)
    rank1 = torch.load(work_dir / 'queue_rank1.pth', weights_only=True)
    assert int(rank0['queue_ptr']) == int(rank1['queue_ptr']) == 3 * 2 * 8  # both processes' keys, every step
    assert torch.equal(rank0['queue'], rank1['queue'])
    assert torch.equal(rank0['conv1'], rank1['conv1'])  # DDP kept the query encoders equal
    checkpoint = torch.load(work_dir / 'iter_3.pth', weights_only=True)
    assert torch.equal(checkpoint['state_dict']['queue'], rank0['queue'])
    # every column is a unit vector: the 48 keys written and the 16 of the random start
    assert torch.allclose(rank0['queue'].norm(dim=0), torch.ones(64), atol=1e-5)
