"""tools/benchmark_vos.py: the J&F it records is what tools/test.py gives for the same config, and the
record renders; on a tiny DAVIS-layout dataset written by the test."""
import importlib.util
import json
import os
import time

import pytest

from conftest import REPO_ROOT
from sfc_plugin.apis import test as run_test
from sfc_plugin.benchmarks.results import render_markdown
from sfc_plugin.benchmarks.vos import evaluate_config
from video_fixtures import make_davis

TINY_MODEL = """
model = dict(
    type='PropagationModel',
    backbone=dict(type='SFCBackbone',
                  fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
    propagation=dict(topk=5, context_len=4, radius=6, temperature=0.05),
)
"""


def benchmark_vos_cli(argv):
    spec = importlib.util.spec_from_file_location('benchmark_vos_cli',
                                                  os.path.join(REPO_ROOT, 'tools', 'benchmark_vos.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def tiny_config(tmp_path, data_root: str, name: str = 'tiny_davis.py') -> str:
    base = os.path.join(REPO_ROOT, 'configs', '_base_')
    path = tmp_path / name
    path.write_text(
        f"_base_ = [{os.path.join(base, 'datasets', 'davis2017_val.py')!r}, "
        f"{os.path.join(base, 'default_runtime.py')!r}]\n{TINY_MODEL}\n"
        f"test_dataloader = dict(num_workers=0, dataset=dict(data_root={data_root!r}))\n")
    return str(path)


@pytest.mark.slow
def test_record_holds_what_tools_test_gives(tmp_path):
    davis_root = str(tmp_path / 'DAVIS')
    make_davis(davis_root, {'alpha': (4, 64, 96, 2), 'beta': (4, 64, 64, 1)})
    config = tiny_config(tmp_path, davis_root)
    out = str(tmp_path / 'record.json')
    assert benchmark_vos_cli([config, '--json', out, '--title', 'Tiny', '--description', 'two videos',
                              '--cfg-options', 'model.propagation.topk=3']) == 0
    with open(out) as file:
        record = json.load(file)
    assert record['title'] == 'Tiny' and record['description'] == 'two videos'
    assert record['commit'] and record['machine']['threads'] >= 1
    [row] = record['rows']
    assert row['config'] == 'tiny_davis' and row['checkpoint'] is None
    assert row['dataset'] == f'{davis_root} (val)'
    expected = run_test([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options', 'model.propagation.topk=3'])
    assert row['J&F'] == pytest.approx(expected['J&F-Mean'], abs=1e-3)
    assert row['J'] == pytest.approx(expected['J-Mean'], abs=1e-3)
    assert row['F'] == pytest.approx(expected['F-Mean'], abs=1e-3)
    text = render_markdown(record)
    assert '| config | checkpoint | dataset | J&F | J | F | seconds |' in text
    assert f'| tiny_davis | - | {davis_root} (val) | {row["J&F"]:.1f} |' in text


def test_one_checkpoint_per_config_and_configs_must_exist(tmp_path, capsys):
    config = tiny_config(tmp_path, str(tmp_path / 'none'))
    assert benchmark_vos_cli([config, config, '--checkpoints', 'none']) == 1
    assert '1 checkpoints for 2 configs' in capsys.readouterr().err
    assert benchmark_vos_cli([str(tmp_path / 'missing.py')]) == 1
    assert 'missing.py: no such config' in capsys.readouterr().err


@pytest.mark.slow
def test_variants_are_rows_of_their_own_settings(tmp_path):
    """Each --variant is one row, named, whose J&F is tools/test.py's with the common and the variant's options."""
    davis_root = str(tmp_path / 'DAVIS')
    make_davis(davis_root, {'alpha': (4, 64, 96, 2)})
    config = tiny_config(tmp_path, davis_root)
    out = str(tmp_path / 'record.json')
    # (kept work dirs: mmengine reuses a visualizer made within the same second, with its save dir)
    assert benchmark_vos_cli([config, '--json', out, '--work-dir', str(tmp_path / 'bench'), '--cfg-options',
                              'model.propagation.temperature=0.05', '--variant', 'top1', 'model.propagation.topk=1',
                              '--variant', 'own']) == 0
    with open(out) as file:
        record = json.load(file)
    assert [row['variant'] for row in record['rows']] == ['top1', 'own']
    assert record['columns'][0] == ['variant', 'variant']
    for row, options in zip(record['rows'], (['model.propagation.topk=1'], [])):
        expected = run_test([config, '--work-dir', str(tmp_path / row['variant']), '--cfg-options',
                             'model.propagation.temperature=0.05', *options])
        assert row['J&F'] == pytest.approx(expected['J&F-Mean'], abs=1e-3)
    assert '| top1 | tiny_davis |' in render_markdown(record)


@pytest.mark.slow
def test_two_evaluations_that_start_in_the_same_second(tmp_path, monkeypatch):
    # mmengine names a run's visualizer after its config and the second it started: without a name of its
    # own, the second evaluation would reuse the first one's, whose temporary work dir is already removed
    davis_root = str(tmp_path / 'DAVIS')
    make_davis(davis_root, {'alpha': (3, 64, 96, 1)})
    config = tiny_config(tmp_path, davis_root)
    strftime = time.strftime
    monkeypatch.setattr(time, 'strftime', lambda fmt, *args: '20261207_120000' if fmt == '%Y%m%d_%H%M%S'
                        else strftime(fmt, *args))
    first, second = (evaluate_config(config, cfg_options=['model.propagation.topk=3']) for _ in range(2))
    assert first['J&F'] == second['J&F']
