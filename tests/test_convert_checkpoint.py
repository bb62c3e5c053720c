"""Checkpoint conversion: every published key layout -> the ResNet, strictly, and the CLI end to end."""
import argparse
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from sfc_plugin.models import FC, ResNet, SFCBackbone
from sfc_plugin.models.converters import (CONVERTERS, check_backbone, convert_checkpoint_file,
                                          detect_layout)
from sfc_plugin.utils import CheckpointMismatchError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_backbone(depth: int) -> dict:
    """A torchvision-style backbone state dict with random values (so equality checks mean something)."""
    generator = torch.Generator().manual_seed(depth)
    return {key: (torch.randn(value.shape, generator=generator) if value.is_floating_point()
                  else torch.randint(0, 100, value.shape, generator=generator))
            for key, value in ResNet(depth=depth).state_dict().items()}


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + key: value for key, value in state.items()}


def mlp_head(prefix: str, dims=(2048, 512, 128)) -> dict:
    """A projector / predictor as in the SFC and PixPro code (in, hidden, out channels)."""
    return {f'{prefix}linear1.weight': torch.randn(dims[1], dims[0], 1, 1),
            f'{prefix}bn1.weight': torch.ones(dims[1]),
            f'{prefix}bn1.running_mean': torch.zeros(dims[1]),
            f'{prefix}linear2.weight': torch.randn(dims[2], dims[1], 1, 1)}


def crw_wrapped(state: dict) -> dict:
    """CRW's layout: reflection-padded convs stored as Sequential(pad, conv) -> `convN.1.weight`."""
    wrapped = {}
    for key, value in state.items():
        name = key.rsplit('.', 1)[0].rsplit('.', 1)[-1]  # module name, e.g. conv1, bn2, 0, 1
        if key.endswith('.weight') and name in ('conv1', 'conv2') and value.dim() == 4:
            key = key[:-len('weight')] + '1.weight'
        wrapped[key] = value
    return wrapped


def official_checkpoint(layout: str, backbone: dict) -> dict:
    """A checkpoint laid out as the published file of ``layout`` (docs/method.md section 4)."""
    channels = 2048 if 'layer1.0.conv3.weight' in backbone else 512  # layer4 output
    if layout == 'moco':
        state = prefixed(backbone, 'module.encoder_q.')
        state.update({'module.encoder_q.fc.weight': torch.randn(128, channels),
                      'module.encoder_q.fc.bias': torch.randn(128)})
        state.update(prefixed({k: v + 1 for k, v in backbone.items()}, 'module.encoder_k.'))
        state.update({'module.queue': torch.randn(128, 64),
                      'module.queue_ptr': torch.zeros(1, dtype=torch.long)})
        return {'epoch': 200, 'arch': 'resnet50', 'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.03, 'params': [0, 1]}]}}
    if layout == 'simsiam':
        state = prefixed(backbone, 'module.encoder.')
        state.update({'module.encoder.fc.0.weight': torch.randn(64, channels),
                      'module.encoder.fc.1.running_mean': torch.zeros(64),
                      'module.predictor.0.weight': torch.randn(16, 64)})
        return {'epoch': 100, 'arch': 'resnet50', 'state_dict': state}
    if layout == 'pixpro':
        state = prefixed(backbone, 'module.encoder.')
        state.update(prefixed(backbone, 'module.encoder_k.'))
        state.update(mlp_head('module.projector.', (channels, 64, 32)))
        state.update(mlp_head('module.projector_k.', (channels, 64, 32)))
        return {'model': state, 'epoch': 400}
    if layout == 'sfc_fc':
        state = prefixed(backbone, 'online_encoder.')
        state.update(prefixed({k: v * 2 for k, v in backbone.items()}, 'target_encoder.'))
        state.update(mlp_head('online_projector.', (channels, 64, 32)))
        state.update(mlp_head('target_projector.', (channels, 64, 32)))
        state.update(mlp_head('predictor.', (32, 64, 32)))
        return {'model': state, 'epoch': 20}
    if layout == 'crw':
        state = prefixed(crw_wrapped(backbone), 'encoder.model.')
        state.update({'selfsim_fc.0.weight': torch.randn(128, channels), 'head.0.bias': torch.randn(3)})
        return {'model': state, 'epoch': 10}
    if layout == 'torchvision':
        return dict(backbone, **{'fc.weight': torch.randn(1000, channels), 'fc.bias': torch.randn(1000)})
    if layout == 'fc_plugin':  # what tools/train.py writes for the FC model
        fc = FC(backbone=dict(type='ResNet', depth=18, strides=(1, 2, 1, 1)),
                projector=dict(type='DenseMLPHead', in_channels=512, hidden_channels=32, out_channels=16),
                predictor=dict(type='DenseMLPHead', in_channels=16, hidden_channels=32, out_channels=16))
        fc.backbone.load_state_dict(backbone)
        return {'meta': {'iter': 10}, 'state_dict': fc.state_dict(), 'optimizer': {}}
    raise AssertionError(layout)


LAYOUT_DEPTHS = [('moco', 50), ('simsiam', 50), ('pixpro', 50), ('sfc_fc', 18), ('crw', 18),
                 ('torchvision', 18), ('fc_plugin', 18)]


@pytest.mark.parametrize('layout, depth', LAYOUT_DEPTHS)
def test_each_layout_converts_to_the_exact_backbone(layout, depth):
    backbone = random_backbone(depth)
    checkpoint = official_checkpoint(layout, backbone)
    assert detect_layout(checkpoint) == layout
    converted = CONVERTERS[layout](checkpoint, f'{layout}.pth')
    assert sorted(converted) == sorted(ResNet(depth=depth).state_dict())  # no missing, no extra
    for key, value in backbone.items():
        assert torch.equal(converted[key], value), key
    model = ResNet(depth=depth, strides=(1, 2, 1), num_stages=3)
    kept = check_backbone(converted, depth, num_stages=3, source=layout)
    assert not any(key.startswith('layer4.') for key in kept)
    model.load_state_dict(kept, strict=True)


def test_crw_rename_touches_only_the_wrapped_convs():
    backbone = random_backbone(18)
    checkpoint = official_checkpoint('crw', backbone)
    assert 'encoder.model.conv1.1.weight' in checkpoint['model']
    assert 'encoder.model.layer2.0.conv2.1.weight' in checkpoint['model']
    assert 'encoder.model.layer2.0.downsample.1.weight' in checkpoint['model']  # a BN: kept as is
    converted = CONVERTERS['crw'](checkpoint, 'crw.pth')
    assert torch.equal(converted['layer2.0.downsample.1.weight'], backbone['layer2.0.downsample.1.weight'])
    assert torch.equal(converted['layer2.0.conv2.weight'], backbone['layer2.0.conv2.weight'])
    # a CRW checkpoint whose convs were never wrapped converts too
    plain = {'model': prefixed(backbone, 'encoder.model.')}
    assert sorted(CONVERTERS['crw'](plain, 'crw.pth')) == sorted(backbone)


def test_wrong_architecture_names_the_mismatched_keys():
    converted = CONVERTERS['moco'](official_checkpoint('moco', random_backbone(50)), 'moco.pth')
    with pytest.raises(CheckpointMismatchError) as error:
        check_backbone(converted, depth=18, num_stages=4, source='moco.pth')
    message = str(error.value)
    assert 'moco.pth as ResNet-18' in message
    assert 'unexpected keys' in message and 'layer1.0.conv3.weight' in message
    assert 'layer1.0.conv1.weight (checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3))' in message


def test_wrong_or_unknown_layout_is_reported():
    pixpro = official_checkpoint('pixpro', random_backbone(18))
    with pytest.raises(ValueError, match="not a MoCo checkpoint: expected the top-level key 'state_dict'"):
        CONVERTERS['moco'](pixpro, 'pixpro.pth')
    with pytest.raises(RuntimeError, match="no key starts with the prefix 'online_encoder.'"):
        CONVERTERS['sfc_fc'](pixpro, 'pixpro.pth')
    with pytest.raises(ValueError, match='unknown checkpoint layout.*--layout'):
        detect_layout({'weights': {'a.b': torch.zeros(1)}}, 'odd.pth')


def test_old_checkpoint_without_bn_counters_and_full_pickles(tmp_path):
    old = {k: v for k, v in official_checkpoint('torchvision', random_backbone(18)).items()
           if not k.endswith('num_batches_tracked')}
    old_path = str(tmp_path / 'resnet18-old.pth')
    torch.save(old, old_path)
    out = str(tmp_path / 'r18.pth')
    meta = convert_checkpoint_file(old_path, out)
    assert meta['layout'] == 'torchvision' and meta['depth'] == 18 and meta['padding_mode'] == 'zeros'
    saved = torch.load(out, weights_only=True)
    assert int(saved['state_dict']['bn1.num_batches_tracked']) == 0

    # CRW saves its argparse namespace: loading it needs an explicit full-pickle opt-in
    crw = official_checkpoint('crw', random_backbone(18))
    crw['args'] = argparse.Namespace(model_type='scratch')
    crw_path = str(tmp_path / 'crw.pth')
    torch.save(crw, crw_path)
    with pytest.raises(RuntimeError, match='unsafe-pickle'):
        convert_checkpoint_file(crw_path, out)
    crw_meta = convert_checkpoint_file(crw_path, out, allow_pickle=True)
    # CRW trained with reflection padding: the file says so (ResNet(padding_mode='reflect'))
    assert crw_meta['layout'] == 'crw' and crw_meta['padding_mode'] == 'reflect'


def load_cli():
    spec = importlib.util.spec_from_file_location('convert_checkpoint_cli',
                                                  os.path.join(REPO_ROOT, 'tools', 'convert_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cli_builds_a_fused_checkpoint_that_sfc_backbone_loads(tmp_path, capsys):
    fc_path, moco_path = str(tmp_path / 'pretrained_fc.pth'), str(tmp_path / 'moco.pth.tar')
    fc_backbone, moco_backbone = random_backbone(18), random_backbone(50)
    torch.save(official_checkpoint('sfc_fc', fc_backbone), fc_path)
    torch.save(official_checkpoint('moco', moco_backbone), moco_path)
    cli = load_cli()

    # error exit naming the mismatch: R50 weights declared as R18
    assert cli.main([moco_path, str(tmp_path / 'bad.pth'), '--depth', '18']) == 1
    assert 'layer1.0.conv3.weight' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'bad.pth')

    fc_out = str(tmp_path / 'fc_converted.pth')
    assert cli.main([fc_path, fc_out, '--num-stages', '3', '--prefix', 'backbone.fine_grained.']) == 0
    assert cli.main([fc_path, str(tmp_path / 'clash.pth'), '--prefix', 'backbone.fine_grained.',
                     '--merge', fc_out]) == 1
    assert 'already present' in capsys.readouterr().err

    fused_path = str(tmp_path / 'sfc.pth')
    result = subprocess.run(
        [sys.executable, os.path.join('tools', 'convert_checkpoint.py'), moco_path, fused_path,
         '--layout', 'auto', '--depth', '50', '--num-stages', '3', '--prefix', 'backbone.semantic.',
         '--merge', fc_out], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fused = torch.load(fused_path, weights_only=True)
    assert fused['meta']['layout'] == 'moco' and fused['meta']['num_stages'] == 3
    keys = set(fused['state_dict'])
    assert all(key.startswith(('backbone.semantic.', 'backbone.fine_grained.')) for key in keys)
    assert not any('layer4' in key or '.fc.' in key for key in keys)

    # what tools/test.py does with a propagation model's SFCBackbone: a strict load
    eval_r = dict(type='ResNet', strides=(1, 2, 1), num_stages=3)
    init_cfg = dict(type='sfc_plugin.StrictPretrained', checkpoint=fused_path, prefix='backbone.')
    backbone = SFCBackbone(semantic=dict(eval_r, depth=50), fine_grained=dict(eval_r, depth=18),
                           init_cfg=init_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.semantic.layer3[5].conv3.weight, moco_backbone['layer3.5.conv3.weight'])
    assert torch.equal(backbone.fine_grained.layer1[0].conv1.weight, fc_backbone['layer1.0.conv1.weight'])
