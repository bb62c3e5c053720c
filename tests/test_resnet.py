"""ResNet: torchvision's parameter names, per-stage strides, truncation, init, strict loading."""
import pytest
import torch
from torch import nn
from mmengine.registry import DefaultScope

from sfc_plugin.models import ResNet
from sfc_plugin.utils import CheckpointMismatchError

# torchvision's published parameter counts (resnet18: 11,689,512; resnet50: 25,557,032) minus
# their fc layer (512 * 1000 + 1000 and 2048 * 1000 + 1000).
TORCHVISION_PARAMS_WITHOUT_FC = {18: 11_689_512 - 513_000, 50: 25_557_032 - 2_049_000}


def count_state_keys(depth: int, num_stages: int = 4) -> int:
    """Entries of torchvision's state dict without fc, counted by hand: a conv has 1, a BN 5."""
    blocks_per_stage, block_entries = {18: ((2, 2, 2, 2), 2 * 6), 50: ((3, 4, 6, 3), 3 * 6)}[depth]
    stages_with_downsample = {18: 3, 50: 4}[depth]  # R18: layer2-4; R50: also layer1 (expansion)
    total = 6  # conv1 + bn1
    total += block_entries * sum(blocks_per_stage[:num_stages])
    total += 6 * (stages_with_downsample - (4 - num_stages))
    return total


@pytest.mark.parametrize('depth', [18, 50])
def test_parameter_names_and_counts_match_torchvision(depth):
    model = ResNet(depth=depth)
    keys = list(model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS_WITHOUT_FC[depth]
    assert len(keys) == count_state_keys(depth)  # torchvision: 122 (R18) / 320 (R50) with fc.*
    expected = ['conv1.weight', 'bn1.weight', 'bn1.running_var', 'bn1.num_batches_tracked',
                'layer1.0.conv1.weight', 'layer1.1.bn2.bias', 'layer2.0.downsample.0.weight',
                'layer2.0.downsample.1.running_mean', 'layer4.1.conv2.weight']
    if depth == 50:
        expected += ['layer1.0.downsample.0.weight', 'layer3.5.conv3.weight', 'layer4.2.bn3.weight']
    for key in expected:
        assert key in keys, key
    assert not any(key.startswith(('fc.', 'avgpool')) for key in keys)


def test_fc_training_setting_stride8_512_channels():
    model = ResNet(depth=18, strides=(1, 2, 1, 1)).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 512, 8, 8)
    assert (model.out_channels, model.stride) == (512, 8)
    # the stage stride sits on the first block's strided conv and on its downsample conv alike
    for stage, stride in ((model.layer2, 2), (model.layer3, 1), (model.layer4, 1)):
        assert stage[0].conv1.stride == (stride, stride)
        assert stage[0].downsample[0].stride == (stride, stride)
        assert stage[1].conv1.stride == (1, 1)
    assert all(m.dilation == (1, 1) for m in model.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize('depth, channels', [(18, 256), (50, 1024)])
def test_evaluation_setting_layer3_at_stride8(depth, channels):
    model = ResNet(depth=depth, strides=(1, 2, 1), num_stages=3).eval()
    assert not any(name.startswith('layer4') for name, _ in model.named_parameters())
    assert not hasattr(model, 'layer4')
    assert len(model.state_dict()) == count_state_keys(depth, num_stages=3)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 60, 107))  # 480x854 / 8 = 60x106.75 -> rounded up like 60x107
    assert out.shape == (1, channels, 8, 14)
    assert (model.out_channels, model.stride) == (channels, 8)
    if depth == 50:  # torchvision's v1.5 bottleneck: stride on the 3x3 conv
        assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)


def test_default_strides_give_stride_32():
    model = ResNet(depth=18).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    assert model.stride == 32


def test_zero_init_residual():
    model = ResNet(depth=18)
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            assert torch.all(block.bn2.weight == 0) and torch.all(block.bn1.weight == 1)
    # with every block's residual branch zeroed, a block passes relu(identity) through
    block = model.layer1[0].eval()
    x = torch.rand(1, 64, 8, 8)
    assert torch.equal(block(x), torch.relu(x))
    model_r50 = ResNet(depth=50)
    assert all(torch.all(block.bn3.weight == 0) for block in model_r50.layer3)
    plain = ResNet(depth=18, zero_init_residual=False)
    assert torch.all(plain.layer1[0].bn2.weight == 1)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match='depth'):
        ResNet(depth=34)
    with pytest.raises(ValueError, match='one stride per stage'):
        ResNet(depth=18, strides=(1, 2, 2, 2), num_stages=3)
    with pytest.raises(ValueError, match='num_stages'):
        ResNet(depth=18, strides=(1, 2), num_stages=2)
    with pytest.raises(ValueError, match='norm_eval_stages'):
        ResNet(depth=18, norm_eval_stages=5)


def test_norm_eval_stages_keep_their_statistics_and_train_their_affine_weights():
    torch.manual_seed(0)
    model = ResNet(depth=18, strides=(1, 2, 1, 1), norm_eval_stages=3, zero_init_residual=False)
    for module in model.modules():  # statistics that a batch would visibly change
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    before = {name: value.clone() for name, value in model.state_dict().items() if 'running' in name}
    images = torch.randn(2, 3, 64, 64)
    model.eval()
    stem_to_layer3 = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                                   model.layer3)
    expected = stem_to_layer3(images)
    model.train()
    assert model.training and not model.bn1.training and not model.layer3[1].bn2.training
    assert model.layer4[0].bn1.training
    torch.testing.assert_close(stem_to_layer3(images), expected)  # normalised with the running statistics
    model(images).square().mean().backward()
    assert model.layer2[0].bn1.weight.grad.abs().sum() > 0  # the affine weights still learn
    after = model.state_dict()
    for name, value in before.items():
        if name.startswith('layer4.'):
            assert not torch.equal(after[name], value), name
        else:
            assert torch.equal(after[name], value), name
    model.eval()
    assert not model.layer4[0].bn1.training


def torchvision_state(depth: int) -> dict:
    """A full torchvision-style state dict (4 stages and an fc layer) of a random network."""
    state = {key: torch.randn_like(value.float()).to(value.dtype) if value.is_floating_point() else value
             for key, value in ResNet(depth=depth).state_dict().items()}
    channels = 512 if depth == 18 else 2048
    state['fc.weight'], state['fc.bias'] = torch.randn(1000, channels), torch.randn(1000)
    return state


def test_strict_pretrained_loads_truncated_resnet(tmp_path):
    state = torchvision_state(18)
    path = str(tmp_path / 'resnet18.pth')
    torch.save(state, path)
    model = ResNet(depth=18, strides=(1, 2, 1), num_stages=3,
                   init_cfg=dict(type='sfc_plugin.StrictPretrained', checkpoint=path))
    assert model.init_cfg['ignore_unexpected'] == ('layer4.', 'fc.')
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_strict_pretrained_prefix_default_scope_and_old_bn(tmp_path):
    state = torchvision_state(18)
    del state['fc.weight'], state['fc.bias']
    # a checkpoint saved before BN counted its batches, under a training prefix
    wrapped = {f'backbone.{key}': value for key, value in state.items()
               if not key.endswith('num_batches_tracked')}
    wrapped['head.weight'] = torch.zeros(3)
    path = str(tmp_path / 'trained.pth')
    torch.save({'state_dict': wrapped, 'meta': {'note': 'test'}}, path)
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        model = ResNet(depth=18, init_cfg=dict(type='StrictPretrained', checkpoint=path, prefix='backbone.'))
        model.init_weights()
    assert torch.equal(model.layer4[1].conv2.weight, state['layer4.1.conv2.weight'])
    assert int(model.bn1.num_batches_tracked) == 0

    bad_prefix = ResNet(depth=18, init_cfg=dict(type='sfc_plugin.StrictPretrained', checkpoint=path,
                                                prefix='model.'))
    with pytest.raises(RuntimeError, match="prefix 'model.'"):
        bad_prefix.init_weights()


def test_strict_pretrained_rejects_wrong_architecture(tmp_path):
    path = str(tmp_path / 'resnet50.pth')
    torch.save(torchvision_state(50), path)
    model = ResNet(depth=18, init_cfg=dict(type='sfc_plugin.StrictPretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError) as error:
        model.init_weights()
    message = str(error.value)
    assert 'layer1.0.conv3.weight' in message  # unexpected
    assert 'layer1.0.conv1.weight (checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3))' in message
    # an explicit ignore_unexpected replaces the ResNet's default: fc.* is then an error
    path18 = str(tmp_path / 'resnet18.pth')
    torch.save(torchvision_state(18), path18)
    explicit = ResNet(depth=18, init_cfg=dict(type='sfc_plugin.StrictPretrained', checkpoint=path18,
                                              ignore_unexpected=()))
    with pytest.raises(CheckpointMismatchError, match='fc.weight'):
        explicit.init_weights()


def crw_style_resnet18(state_dict: dict) -> nn.Module:
    """ResNet-18 to layer3 as CRW (videowalk) builds it: every conv with padding > 0 wrapped as
    Sequential(ReflectionPad2d(p), Conv2d(padding=0)); the max-pool keeps its zero padding."""
    model = ResNet(depth=18, strides=(1, 2, 1), num_stages=3)
    model.load_state_dict(state_dict)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d) and child.padding[0] > 0:
                padding = child.padding[0]
                child.padding = (0, 0)
                setattr(module, name, nn.Sequential(nn.ReflectionPad2d(padding), child))
    return model


def test_reflect_padding_computes_what_crw_trained():
    reflect = ResNet(depth=18, strides=(1, 2, 1), num_stages=3, padding_mode='reflect').eval()
    for module in reflect.modules():  # non-trivial BN statistics
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.running_mean.uniform_(-0.1, 0.1)
    reference = crw_style_resnet18(reflect.state_dict()).eval()
    # the wrapped layout is the one CRW's checkpoint stores (conv1.1.weight, layer1.0.conv2.1.weight)
    assert 'conv1.1.weight' in reference.state_dict() and 'layer3.0.conv2.1.weight' in reference.state_dict()
    zeros = ResNet(depth=18, strides=(1, 2, 1), num_stages=3).eval()
    zeros.load_state_dict(reflect.state_dict())  # same keys, same weights
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(reflect(images), reference(images), atol=1e-5)
        assert not torch.allclose(zeros(images), reference(images), atol=1e-3)
    with pytest.raises(ValueError, match='padding_mode'):
        ResNet(padding_mode='circular')
