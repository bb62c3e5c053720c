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
