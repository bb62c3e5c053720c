"""tools/benchmark_backbones.py's comparisons (layouts, torch.compile): both variants timed, and the features compared."""
import os

import pytest

from sfc_plugin.benchmarks.backbones import benchmark_backbones

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')


def test_compare_layouts_times_both_and_reports_the_feature_difference():
    report = benchmark_backbones([TINY_CONFIG], size=(64, 96), repeats=2, compare_layouts=True)
    row = report['results'][TINY_CONFIG]
    assert row['channels_last'] is True
    assert row['features'][1:] == [8, 12]
    assert row['median_ms'] > 0 and row['contiguous_median_ms'] > 0
    # (the milliseconds are rounded to 0.1 ms, the ratio is not)
    assert row['speedup_over_contiguous'] == pytest.approx(row['contiguous_median_ms'] / row['median_ms'], rel=0.1)
    assert 0 <= row['max_abs_difference'] < 1e-5
    assert 'contiguous_median_ms' not in benchmark_backbones([TINY_CONFIG], size=(64, 96), repeats=1)['results'][
        TINY_CONFIG]


def test_compare_compiled_times_torch_compile_beside_the_eager_network():
    report = benchmark_backbones([TINY_CONFIG], size=(64, 96), repeats=2, compare_compiled=True)
    row = report['results'][TINY_CONFIG]
    assert row['compile_seconds'] > 0 and row['compiled_median_ms'] > 0
    assert row['compiled_speedup'] == pytest.approx(row['median_ms'] / row['compiled_median_ms'], rel=0.1)
    assert 0 <= row['compiled_max_abs_difference'] < 1e-5
    assert 'contiguous_median_ms' not in row
