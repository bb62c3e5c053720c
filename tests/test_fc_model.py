"""FC self-supervised model: data contract, EMA target, momentum schedule, resume state."""
import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

from sfc_plugin.models import FC, TwoViewDataPreprocessor
from sfc_plugin.registry import MODELS

CROP = 32  # features 4x4 at stride 8


def tiny_fc_cfg(**overrides) -> dict:
    cfg = dict(
        type='FC',
        backbone=dict(type='ResNet', depth=18, strides=(1, 2, 1, 1)),
        projector=dict(type='DenseMLPHead', in_channels=512, hidden_channels=64, out_channels=32),
        predictor=dict(type='DenseMLPHead', in_channels=32, hidden_channels=64, out_channels=32),
        loss=dict(type='FCLoss', radius=0.5),
        base_momentum=0.99,
        total_iters=10,
        data_preprocessor=dict(type='TwoViewDataPreprocessor', mean=[125.0, 122.0, 114.0],
                               std=[52.0, 51.0, 51.0]))
    cfg.update(overrides)
    return cfg


def two_view_batch(batch_size: int = 2) -> dict:
    """What pseudo_collate gives for samples of the two-view pipeline."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (2, 3, CROP, CROP), dtype=torch.uint8, generator=generator)
              for _ in range(batch_size)]
    boxes = torch.tensor([[0.0, 0.0, 0.6, 0.6], [0.3, 0.2, 0.9, 0.8]])
    samples = [BaseDataElement(crop_boxes=boxes.clone()) for _ in range(batch_size)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture
def fresh_message_hub():
    """A new current message hub without max_iters (other tests may have run a Runner)."""
    return MessageHub.get_instance(f'test_fc_model_{id(object())}')


def params(module: torch.nn.Module) -> list:
    return [p.detach().clone() for p in module.parameters()]


def test_preprocessor_stacks_and_normalises():
    preprocessor = TwoViewDataPreprocessor(mean=[125.0, 122.0, 114.0], std=[52.0, 51.0, 51.0])
    data = two_view_batch()
    out = preprocessor(data, training=True)
    assert out['inputs'].shape == (2, 2, 3, CROP, CROP) and out['inputs'].dtype == torch.float32
    expected = (data['inputs'][1][0, 2].float() - 114.0) / 51.0  # sample 1, view 1, blue channel
    assert torch.allclose(out['inputs'][1, 0, 2], expected)
    assert out['data_samples'][0].crop_boxes.shape == (2, 4)
    with pytest.raises(ValueError, match=r'\(B, 2, 3, S, S\)'):
        preprocessor(dict(inputs=[torch.zeros(3, CROP, CROP, dtype=torch.uint8)], data_samples=None))
    default = TwoViewDataPreprocessor()  # the FC reference training normalisation
    assert torch.allclose(default.mean.flatten(), torch.tensor([0.4914, 0.4822, 0.4465]) * 255)


def test_momentum_schedule(fresh_message_hub):
    model = MODELS.build(tiny_fc_cfg(total_iters=1000))
    assert model.total_steps() == 1000
    assert model.momentum_at(0, 1000) == pytest.approx(0.99)
    assert model.momentum_at(500, 1000) == pytest.approx(0.995)
    assert model.momentum_at(1000, 1000) == pytest.approx(1.0)
    assert model.momentum_at(1500, 1000) == pytest.approx(1.0)
    fresh_message_hub.update_info('max_iters', 60000)  # what a Runner records: it wins
    assert model.total_steps() == 60000
    no_total = MODELS.build(tiny_fc_cfg(total_iters=None))
    MessageHub.get_instance(f'test_fc_model_empty_{id(object())}')
    with pytest.raises(RuntimeError, match='total_iters'):
        no_total.total_steps()


def test_training_steps_update_target_only_by_ema(fresh_message_hub):
    torch.manual_seed(0)
    model = MODELS.build(tiny_fc_cfg())
    model.init_weights()
    assert isinstance(model, FC)
    online_state, target_state = model.backbone.state_dict(), model.target_backbone.state_dict()
    assert all(torch.equal(online_state[key], target_state[key]) for key in online_state)
    assert all(not p.requires_grad for p in model.target_backbone.parameters())
    assert all(not p.requires_grad for p in model.target_projector.parameters())
    assert not any(name.startswith('target_') for name, _ in model.named_parameters() if _.requires_grad)
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))

    for step in range(2):
        online_before = params(model.backbone) + params(model.projector)
        target_before = params(model.target_backbone) + params(model.target_projector)
        log_vars = model.train_step(two_view_batch(), optim_wrapper)
        assert math.isfinite(log_vars['loss'].item())
        momentum = 1 - 0.01 * (math.cos(math.pi * step / 10) + 1) / 2
        assert log_vars['ema_momentum'].item() == pytest.approx(momentum)
        target_after = params(model.target_backbone) + params(model.target_projector)
        online_after = params(model.backbone) + params(model.projector)
        for before_t, before_o, after_t in zip(target_before, online_before, target_after):
            assert torch.allclose(after_t, momentum * before_t + (1 - momentum) * before_o, atol=1e-6)
        assert any(not torch.equal(a, b) for a, b in zip(online_before, online_after))  # Adam stepped
        assert all(p.grad is None for p in model.target_backbone.parameters())
    assert int(model.ema_step) == 2

    # the checkpoint holds the step and the target weights: a resumed model continues exactly
    resumed = MODELS.build(tiny_fc_cfg())
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.ema_step) == 2
    assert torch.equal(resumed.target_projector.linear2.weight, model.target_projector.linear2.weight)


def test_forward_modes(fresh_message_hub):
    model = MODELS.build(tiny_fc_cfg()).eval()
    data = model.data_preprocessor(two_view_batch(), training=False)
    with torch.no_grad():
        pairs = model(data['inputs'], mode='tensor')
        single = model(data['inputs'][:, 0], mode='tensor')
        samples = model(data['inputs'][:, 0], data['data_samples'], mode='predict')
    assert pairs.shape == (2, 2, 512, 4, 4) and single.shape == (2, 512, 4, 4)
    assert torch.allclose(pairs[:, 0], single, atol=1e-5)
    assert torch.allclose(samples[1].feature.norm(dim=0), torch.ones(4, 4), atol=1e-5)
    with pytest.raises(ValueError, match='crop_boxes'):
        model(data['inputs'], [BaseDataElement() for _ in range(2)], mode='loss')
    with pytest.raises(ValueError, match='mode'):
        model(data['inputs'], mode='features')


def test_dense_mlp_head_acts_per_location():
    head = MODELS.build(dict(type='DenseMLPHead', in_channels=8, hidden_channels=16, out_channels=4)).eval()
    head.bn1.running_mean.uniform_(-1, 1)
    x = torch.randn(1, 8, 3, 3)
    changed = x.clone()
    changed[0, :, 1, 2] += 5.0  # perturb one location only
    with torch.no_grad():
        out, out_changed = head(x), head(changed)
    assert out.shape == (1, 4, 3, 3)
    differs = (out - out_changed).abs().sum(dim=1)[0] > 1e-6
    assert differs.tolist() == [[False] * 3, [False, False, True], [False] * 3]
