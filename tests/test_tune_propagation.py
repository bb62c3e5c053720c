"""tune_grid: fusing cached branch features per grid point gives exactly what the evaluation model
gives when built with that fusion weight and those settings (lambda 0 is the semantic branch alone)."""
import os

import pytest
import torch

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.apis.tune_propagation import evaluate_davis_layout, tune_grid
from sfc_plugin.apis.inference import build_model
from video_fixtures import make_davis

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')


@pytest.fixture(scope='module')
def tiny_davis(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('davis'))
    make_davis(root, {'a': (5, 48, 64, 2), 'b': (4, 40, 56, 1)})
    return root


@pytest.mark.slow
def test_grid_points_equal_models_built_with_those_settings(tiny_davis, tmp_path):
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    model, cfg = build_model(TINY_CONFIG, checkpoint)
    settings = [{}, {'topk': 3, 'temperature': 0.1}]
    rows = tune_grid(model, cfg, [tiny_davis], [0.0, 1.75], settings)
    assert len(rows) == 4 and model.settings.topk == 5  # restored
    by_point = {(row['fine_grained_weight'], row['settings'].get('topk', 5)): row for row in rows}

    for weight, topk in ((1.75, 5), (1.75, 3), (0.0, 3)):
        options = {'model.propagation.topk': topk}
        if topk == 3:
            options['model.propagation.temperature'] = 0.1
        direct, _ = build_model(TINY_CONFIG, checkpoint, cfg_options=options)
        if weight == 0.0:  # the semantic branch alone
            direct.backbone.fine_grained = None
        expected = evaluate_davis_layout(direct, cfg, tiny_davis)
        row = by_point[(weight, topk)]
        assert row['J&F-Mean'] == pytest.approx(round(expected['J&F-Mean'], 2), abs=1e-9)
        assert row['J-Mean'] == pytest.approx(round(expected['J-Mean'], 2), abs=1e-9)


class ReferenceLite0Stride8(torch.nn.Module):
    """The reference implementation (PyPI efficientnet-lite-pytorch) cut after block 4."""

    stride, out_channels = 8, 40

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        x = self.net._swish(self.net._bn0(self.net._conv_stem(x)))
        for block in self.net._blocks[:5]:
            x = block(x)
        return x


@pytest.mark.slow
def test_semantic_branch_scores_what_the_reference_features_score(tiny_davis):
    """At sizes where the reference pads as TensorFlow (every stride-2 input even: 48 x 64), the
    semantic branch at the default's cut gives the same J&F as the reference network's features."""
    reference_package = pytest.importorskip('efficientnet_lite_pytorch')
    from sfc_plugin.models.backbones.efficientnet_lite import lite0_weights_path
    model, cfg = build_model(os.path.join(REPO_ROOT, 'configs', 'vos_benchmark', 'effl0_vosbench.py'),
                             cfg_options={'model.backbone.semantic.out_block': 4,
                                          'model.propagation.topk': 5, 'model.propagation.context_len': 3})
    ours = evaluate_davis_layout(model, cfg, tiny_davis)
    reference = reference_package.EfficientNet.from_pretrained('efficientnet-lite0', weights_path=lite0_weights_path())
    model.backbone.semantic = ReferenceLite0Stride8(reference.eval())
    theirs = evaluate_davis_layout(model, cfg, tiny_davis)
    assert ours['J&F-Mean'] == pytest.approx(theirs['J&F-Mean'], abs=1e-6)
    assert ours['J-Mean'] == pytest.approx(theirs['J-Mean'], abs=1e-6)
