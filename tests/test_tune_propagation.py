"""tune_grid: fusing cached branch features per grid point gives exactly what the evaluation model
gives when built with that fusion weight and those settings (lambda 0 is the semantic branch alone)."""
import os

import pytest

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.apis.tune_propagation import evaluate_davis_layout, tune_grid
from sfc_plugin.deploy import build_model
from video_fixtures import make_davis

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')


@pytest.fixture(scope='module')
def tiny_davis(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('davis'))
    make_davis(root, {'a': (5, 48, 64, 2), 'b': (4, 40, 56, 1)})
    return root


def test_grid_points_equal_models_built_with_those_settings(tiny_davis, tmp_path):
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    model, cfg = build_model(TINY_CONFIG, checkpoint)
    settings = [{}, {'topk': 3, 'temperature': 0.1}]
    rows = tune_grid(model, cfg, [tiny_davis], [0.0, 1.75], settings)
    assert len(rows) == 4 and model.propagator_cfg['topk'] == 5  # restored
    by_point = {(row['fine_grained_weight'], row['settings'].get('topk', 5)): row for row in rows}

    for weight, topk in ((1.75, 5), (1.75, 3), (0.0, 3)):
        options = {'model.propagator.topk': topk}
        if topk == 3:
            options['model.propagator.temperature'] = 0.1
        direct, _ = build_model(TINY_CONFIG, checkpoint, cfg_options=options)
        if weight == 0.0:  # the semantic branch alone
            direct.backbone.fine_grained = None
        expected = evaluate_davis_layout(direct, cfg, tiny_davis)
        row = by_point[(weight, topk)]
        assert row['J&F-Mean'] == pytest.approx(round(expected['J&F-Mean'], 2), abs=1e-9)
        assert row['J-Mean'] == pytest.approx(round(expected['J-Mean'], 2), abs=1e-9)
