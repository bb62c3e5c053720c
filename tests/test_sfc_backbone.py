"""SFCBackbone: the fused feature (docs/method.md section 1), single-branch use, and registry wiring."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope

from sfc_plugin.models import ResNet, SFCBackbone

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_R18 = dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)
SEM_MEAN, SEM_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FC_MEAN, FC_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and gammas, so that branches give distinct, non-zero features."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)


def cosine_matrix(features: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (h*w, h*w) cosine similarities, written with explicit norms."""
    flat = features.reshape(features.shape[0], -1)
    norms = torch.sqrt((flat ** 2).sum(dim=0))
    return (flat.T @ flat) / (norms[:, None] * norms[None, :])


def branch_input(images, mean, std):
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def test_fused_affinity_equals_weighted_branch_affinities():
    weight = 1.75
    model = SFCBackbone(semantic=EVAL_R18, fine_grained=EVAL_R18, fine_grained_weight=weight,
                        semantic_mean=SEM_MEAN, semantic_std=SEM_STD,
                        fine_grained_mean=FC_MEAN, fine_grained_std=FC_STD).eval()
    randomise_bn(model)
    images = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        fused = model(images)[0]  # (512, 5, 6)
        fine = model.fine_grained(branch_input(images, FC_MEAN, FC_STD))[0]
        semantic = model.semantic(branch_input(images, SEM_MEAN, SEM_STD))[0]
    assert fused.shape == (512, 5, 6)
    assert (model.out_channels, model.stride) == (512, 8)
    assert torch.allclose(fused.norm(dim=0), torch.ones(5, 6), atol=1e-5)

    expected = (weight ** 2 * cosine_matrix(fine) + cosine_matrix(semantic)) / (1 + weight ** 2)
    fused_flat = fused.reshape(512, -1)
    assert torch.allclose(fused_flat.T @ fused_flat, expected, atol=1e-5)
    # fine-grained channels first, scaled by lambda / sqrt(1 + lambda^2)
    fine_unit = fine / fine.norm(dim=0, keepdim=True)
    assert torch.allclose(fused[:256], weight / (1 + weight ** 2) ** 0.5 * fine_unit, atol=1e-5)


def test_channels_last_layout_gives_the_contiguous_layouts_features():
    """The CPU's channels-last run (the default) returns a contiguous map equal to the NCHW run's to rounding,
    whatever layout the frame comes in."""
    model = SFCBackbone(semantic=EVAL_R18, fine_grained=EVAL_R18, fine_grained_weight=1.75).eval()
    randomise_bn(model)
    first_conv = next(m for m in model.fine_grained.modules() if isinstance(m, torch.nn.Conv2d))
    layouts = []
    first_conv.register_forward_pre_hook(
        lambda module, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    images = torch.rand(1, 3, 56, 72)
    with torch.no_grad():
        model.channels_last = False
        reference = model(images)
        model.channels_last = True
        from_nchw = model(images)
        from_nhwc = model(images.contiguous(memory_format=torch.channels_last))
    assert layouts == [False, True, True]
    assert SFCBackbone(fine_grained=EVAL_R18).channels_last  # the default
    for features in (from_nchw, from_nhwc):
        assert features.is_contiguous()
        assert torch.allclose(features, reference, atol=1e-6)



def test_bfloat16_networks_give_fp32_unit_features_close_to_the_fp32_ones():
    """amp_dtype runs the convolutions in bfloat16 (seen by a forward hook) and fuses in fp32: unit fp32 features
    whose cosine with the fp32 features is near 1, and distinct from them (the mode really changes precision); a
    trace for export runs in fp32."""
    model = SFCBackbone(semantic=EVAL_R18, fine_grained=EVAL_R18, fine_grained_weight=1.75).eval()
    randomise_bn(model)
    conv_dtypes = []
    first_conv = next(m for m in model.semantic.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda module, inputs, output: conv_dtypes.append(output.dtype))
    images = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        reference = model(images)
        model.amp_dtype = 'bfloat16'
        reduced = model(images)
    assert conv_dtypes == [torch.float32, torch.bfloat16]
    assert reduced.dtype == torch.float32 and reduced.shape == reference.shape
    assert torch.allclose(reduced.norm(dim=1), torch.ones(1, 6, 8), atol=1e-5)
    cosine = (reduced * reference).sum(1)
    assert cosine.min() > 0.98 and (reduced - reference).abs().max() > 1e-4, float(cosine.min())
    with torch.no_grad():
        traced = torch.jit.trace(model, images)  # an export traces in fp32 (it has its own precision option)
    assert torch.allclose(traced(images), reference, atol=1e-5)
    with pytest.raises(ValueError, match='amp_dtype'):
        SFCBackbone(fine_grained=EVAL_R18, amp_dtype='int8')

def test_single_branch_is_its_normalised_feature():
    for branch in ('semantic', 'fine_grained'):
        model = SFCBackbone(**{branch: EVAL_R18}).eval()
        randomise_bn(model)
        images = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            out = model(images)
            raw = getattr(model, branch)(branch_input(images, SEM_MEAN, SEM_STD))
        assert out.shape == (2, 256, 4, 4) and model.out_channels == 256
        assert torch.allclose(out, raw / raw.norm(dim=1, keepdim=True), atol=1e-6)
    with pytest.raises(ValueError, match='semantic or a fine_grained'):
        SFCBackbone()


def test_semantic_branch_at_another_stride_is_resized_to_the_fine_grained_grid():
    semantic_stride16 = dict(type='ResNet', depth=18, strides=(1, 2, 2), num_stages=3)
    model = SFCBackbone(semantic=semantic_stride16, fine_grained=EVAL_R18, fine_grained_weight=1.0).eval()
    randomise_bn(model)
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        fused = model(images)
        semantic = model.semantic(branch_input(images, SEM_MEAN, SEM_STD))
    assert semantic.shape[-2:] == (4, 4) and fused.shape == (1, 512, 8, 8) and model.stride == 8
    resized = torch.nn.functional.interpolate(semantic, size=(8, 8), mode='bilinear', align_corners=False)
    resized = resized / resized.norm(dim=1, keepdim=True)
    assert torch.allclose(fused[:, 256:], resized / 2 ** 0.5, atol=1e-5)


def test_state_dict_holds_only_network_weights():
    model = SFCBackbone(semantic=EVAL_R18, fine_grained=EVAL_R18)
    keys = list(model.state_dict())
    assert all(key.startswith(('semantic.', 'fine_grained.')) for key in keys)
    assert 'fine_grained.layer3.1.bn2.weight' in keys and 'semantic.conv1.weight' in keys


def test_built_from_config_under_the_sfc_scope():
    cfg = dict(type='SFCBackbone', fine_grained=EVAL_R18, semantic=dict(EVAL_R18, depth=50))
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        model = MMENGINE_MODELS.build(cfg)
        resnet = MMENGINE_MODELS.build(dict(type='ResNet', depth=18))
    assert isinstance(model, SFCBackbone) and isinstance(model.semantic, ResNet)
    assert model.out_channels == 256 + 1024
    assert isinstance(resnet, ResNet)
    assert isinstance(MMENGINE_MODELS.build(dict(type='sfc_plugin.ResNet', depth=18)), ResNet)


@pytest.mark.slow
def test_registry_wiring_after_importing_only_the_package():
    """A fresh interpreter that only runs `import sfc_plugin` finds `sfc_plugin.ResNet` and
    `sfc_plugin.SFCBackbone` in mmengine's root MODELS registry (what custom_imports=['sfc_plugin'] relies on)."""
    code = ('import sfc_plugin\n'
            'from mmengine.registry import MODELS\n'
            "m = MODELS.build(dict(type='sfc_plugin.SFCBackbone',"
            " fine_grained=dict(type='sfc_plugin.ResNet', depth=18, strides=(1, 2, 1), num_stages=3)))\n"
            'print(type(m).__name__, type(m.fine_grained).__name__)\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['SFCBackbone', 'ResNet']
