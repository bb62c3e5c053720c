"""tools/benchmark_runtime.py's core run: the steady state is timed apart from the frames whose window still
holds copies of frame 0."""
import os

import pytest
import torch

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.apis.inference import build_model
from sfc_plugin.benchmarks.runtime import core_run, steady_figures
from sfc_plugin.runtime.backends import TorchBackend

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')


@pytest.fixture(scope='module')
def backend(tmp_path_factory):
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path_factory.mktemp('tiny') / 'tiny.pth'))
    model = build_model(TINY_CONFIG, checkpoint, cfg_options={'model.propagation.context_len': 3})[0]
    return TorchBackend(model, 'cpu')


def test_steady_state_counts_the_frames_after_the_window_is_full(backend):
    torch.manual_seed(0)
    images = [torch.rand(3, 32, 48) for _ in range(9)]
    first_labels = torch.zeros(2, 4, 6)
    first_labels[1, 1:3, 2:4] = 1
    first_labels[0] = 1 - first_labels[1]
    run = core_run(backend, images, first_labels)
    steady = run['steady']
    assert steady['frames'] == 9 - (3 + 1)  # frame 0 and the 3 predicted frames that still hold its copies
    assert 0 < steady['propagate'] <= run['stages']['propagate']
    assert 0 < steady['backbone'] <= run['stages']['backbone']
    figures = steady_figures(steady)
    assert figures['frames'] == 5
    assert figures['propagate_ms_per_frame'] == pytest.approx(1e3 * steady['propagate'] / 5, abs=0.01)
    seconds = steady['backbone'] + steady['propagate']
    assert figures['frames_per_second'] == pytest.approx(5 / seconds, rel=0.01, abs=0.01)
    assert core_run(backend, images[:4], first_labels)['steady'] is None
    assert steady_figures(None) is None


def test_record_rows_are_the_reports_steady_and_end_to_end_figures(tmp_path):
    from sfc_plugin.benchmarks.results import render_markdown
    from sfc_plugin.benchmarks.runtime import core_ms, runtime_record
    core = {'backbone_ms_per_frame': 300.0, 'propagate_ms_per_frame': 900.0, 'frames_per_second': 0.9,
            'steady_state': {'frames': 30, 'backbone_ms_per_frame': 250.0, 'propagate_ms_per_frame': 750.0,
                             'frames_per_second': 1.0}}
    report = {'sizes': {'480p': [480, 854], 'demo': [144, 176]},
              'results': {'480p': {'torch-cpu': {'frames': 51, 'core': core, 'end_to_end': {'frames_per_second': 0.8}},
                                   'tensorrt': {'unavailable': 'no TensorRT'}},
                          'demo': {'onnxruntime-cpu': {'frames': 4, 'end_to_end': {'frames_per_second': 8.0},
                                                       'core': dict(core, steady_state=None, frames_per_second=10.0)}}}}
    record = runtime_record(report, 'runtime', 'test rows', threads=2)
    assert record['rows'] == [
        {'size': '480p (854 x 480)', 'backend': 'torch-cpu', 'frames': 51, 'steady_frames': 30, 'backbone_ms': 250.0,
         'propagate_ms': 750.0, 'core_ms': 1000.0, 'end_to_end_ms': 1250.0},
        {'size': 'demo (176 x 144)', 'backend': 'onnxruntime-cpu', 'frames': 4, 'steady_frames': None,
         'backbone_ms': 300.0, 'propagate_ms': 900.0, 'core_ms': 1200.0, 'end_to_end_ms': 125.0}]
    assert record['machine']['threads'] == 2
    assert core_ms(report['results']['480p']['torch-cpu']) == 1000.0  # the steady state's
    table = render_markdown(record)
    assert '| 480p (854 x 480) | torch-cpu | 51 | 30 | 250.0 | 750.0 | 1000.0 | 1250.0 |' in table
