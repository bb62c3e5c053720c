"""min_input_side: small frames are scaled up for the network (evaluation and sfc-propagate alike),
masks stay at the frame's size; frames at or above the size are untouched."""
import os

import numpy as np
import pytest

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.apis.tune_propagation import evaluate_davis_layout
from sfc_plugin.datasets import DAVISDataset
from sfc_plugin.apis.inference import build_model
from sfc_plugin.propagation import network_input_size
from sfc_plugin.runtime.backends import TorchBackend
from video_fixtures import make_davis

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')


def test_network_input_size():
    assert network_input_size((240, 432), 480) == (480, 864)
    assert network_input_size((144, 176), 480) == (480, 587)  # aspect kept, rounded
    assert network_input_size((480, 854), 480) == (480, 854)  # DAVIS 480p: untouched
    assert network_input_size((720, 1280), 480) == (720, 1280)  # never scaled down
    assert network_input_size((240, 432), None) == (240, 432)


@pytest.mark.slow
def test_evaluation_scales_small_frames_and_scores_at_native_size(tmp_path):
    root = str(tmp_path / 'davis')
    make_davis(root, {'a': (4, 40, 56, 2)})
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    scaled, cfg = build_model(TINY_CONFIG, checkpoint, cfg_options={'model.min_input_side': 80})
    native, _ = build_model(TINY_CONFIG, checkpoint)
    sample = DAVISDataset(data_root=root)[0]
    by_policy = scaled.propagate_video(dict(sample))
    by_dataset = native.propagate_video(dict(sample, input_size=(80, 112)))  # the same scaled size, given
    unscaled = native.propagate_video(dict(sample))
    assert by_policy['pred_ids'].shape == (4, 40, 56)
    np.testing.assert_array_equal(by_policy['pred_ids'], by_dataset['pred_ids'])
    assert not np.array_equal(by_policy['pred_ids'], unscaled['pred_ids'])
    # scored at the native size either way: the same metric as a dataset that fixes the input size
    fixed_cfg = cfg.copy()
    fixed_cfg.test_dataloader.dataset.input_size = (80, 112)
    assert evaluate_davis_layout(scaled, cfg, root)['J&F-Mean'] == pytest.approx(
        evaluate_davis_layout(native, fixed_cfg, root)['J&F-Mean'], abs=1e-9)


def test_torch_backend_follows_the_model_unless_a_size_is_given(tmp_path):
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    model, _ = build_model(TINY_CONFIG, checkpoint, cfg_options={'model.min_input_side': 480})
    assert TorchBackend(model, 'cpu').input_size((144, 176)) == (480, 587)
    assert TorchBackend(model, 'cpu').input_size((480, 854)) == (480, 854)
    assert TorchBackend(model, 'cpu', image_size=(96, 128)).input_size((144, 176)) == (96, 128)


@pytest.mark.slow
def test_export_records_the_rule_and_the_runtime_says_where_it_is_not_honoured(tmp_path, monkeypatch):
    """An export runs every video at its fixed size: meta.json records min_input_side, the export warns when its
    size is below it, and the onnxruntime backend says (once per frame size) where the model would run another."""
    from sfc_plugin.deploy import ExportOptions, export_onnx, load_export_meta
    from sfc_plugin.runtime.backends import OnnxRuntimeBackend
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    export_logs, runtime_logs = [], []
    monkeypatch.setattr('sfc_plugin.deploy.onnx_export.print_log', lambda message, **kwargs: export_logs.append(message))
    monkeypatch.setattr('sfc_plugin.runtime.backends.print_log', lambda message, **kwargs: runtime_logs.append(message))
    out = str(tmp_path / 'export')
    export_onnx(TINY_CONFIG, checkpoint, out, ExportOptions(image_size=(64, 96), num_labels=3, verify=False),
                cfg_options={'model.min_input_side': 80})
    assert load_export_meta(out).min_input_side == 80
    assert any('below 80 up to it; this export runs every video at 64x96' in line for line in export_logs)
    backend = OnnxRuntimeBackend(out)
    assert backend.input_size((40, 56)) == (64, 96)
    assert backend.input_size((40, 56)) == (64, 96)
    said = [line for line in runtime_logs if 'frames of 56x40' in line]
    assert len(said) == 1 and 'runs them at 112x80' in said[0] and '--image-size 80 112' in said[0]
    assert backend.input_size((96, 144)) == (64, 96)  # above the rule: the model would run 96x144 itself
    assert any('frames of 144x96' in line and 'runs them at 144x96' in line for line in runtime_logs)
    backend.meta.min_input_side = None  # an export of a model without the rule, at the frames' own size: silent
    runtime_logs.clear()
    assert backend.input_size((64, 96)) == (64, 96) and runtime_logs == []
