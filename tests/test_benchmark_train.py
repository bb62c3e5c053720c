"""tools/benchmark_train.py's measurement: each run times its own iterations, also when two runs of the same
config start within the same second (mmengine looks its message hub and visualizer up by experiment name)."""
import time

from conftest import REPO_ROOT
from sfc_plugin.benchmarks.train import benchmark_training
from sfc_plugin.generators.offline_data import write_skimage_photos


def test_two_runs_of_one_config_in_the_same_second(tmp_path, monkeypatch):
    write_skimage_photos(str(tmp_path), max_side=128)
    strftime = time.strftime
    monkeypatch.setattr(time, 'strftime', lambda fmt, *args: '20261207_120000' if fmt == '%Y%m%d_%H%M%S'
                        else strftime(fmt, *args))
    config = f'{REPO_ROOT}/configs/fc/fc_r18_tiny_cpu.py'
    for _ in range(2):
        row = benchmark_training(config, str(tmp_path), iters=2, warmup=1, batch_size=2, num_workers=0)
        assert row['measured_iters'] == 2 and row['seconds_per_iter'] > 0
