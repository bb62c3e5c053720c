"""J&F of label-propagation configs on DAVIS-layout datasets, as one result record.

What ``tools/benchmark_vos.py`` runs: each config is evaluated exactly as ``tools/test.py CONFIG
[CHECKPOINT]`` evaluates it (the same entry point, :func:`sfc_plugin.apis.test`: mmengine's Runner, the
config's dataset, model, runtime seed and ``DAVISMetric``), one after the other in this process. A row
holds the config, its dataset (data root and split), J&F-Mean, J-Mean and F-Mean (%), and the seconds the
evaluation took. With variants (named sets of ``--cfg-options`` on top of the common ones), each config
gives one row per variant, named in a first column.
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

from mmengine.config import DictAction

from sfc_plugin.apis import test as run_test
from sfc_plugin.apis.inference import load_config

COLUMNS = (('config', 'config'), ('checkpoint', 'checkpoint'), ('dataset', 'dataset'), ('J&F', 'J&F'),
           ('J', 'J'), ('F', 'F'), ('seconds', 'seconds'))
VARIANT_COLUMNS = (('variant', 'variant'),) + COLUMNS
# (name, cfg options as key=value strings)
Variant = Tuple[str, Sequence[str]]


def config_name(config: str) -> str:
    """``configs/vos_benchmark/effl0_cutout.py`` -> ``effl0_cutout``."""
    return osp.splitext(osp.basename(config))[0]


def dataset_name(config: str, cfg_options: Optional[Sequence[str]] = None) -> str:
    """The config's test data root and split, e.g. ``data/cutout_report (val)``."""
    cfg = load_config(config, parse_cfg_options(cfg_options))
    dataset = cfg.test_dataloader.dataset
    split = dataset.get('split')
    return f'{dataset.get("data_root")}' + (f' ({split})' if split else '')


def parse_cfg_options(options: Optional[Sequence[str]]) -> Optional[dict]:
    """``['a.b=1', 'c=x']`` -> the dict ``--cfg-options`` of ``tools/test.py`` makes of them."""
    if not options:
        return None
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def evaluate_config(config: str, checkpoint: Optional[str] = None, work_dir: Optional[str] = None,
                    cfg_options: Optional[Sequence[str]] = None) -> dict:
    """One row: ``tools/test.py config [checkpoint] --work-dir ... [--cfg-options ...]`` run in this
    process, timed; ``cfg_options`` as written on that command line (``key=value`` strings)."""
    temporary = work_dir is None
    work_dir = tempfile.mkdtemp(prefix='sfc_vos_') if temporary else work_dir
    # mmengine names a run's logger and visualizer after its config and the second it started; a second run
    # in this process within the same second would get the first one's (writing into its removed work dir)
    experiment = f'experiment_name={config_name(config)}_{time.time_ns()}'
    argv = [config] + ([checkpoint] if checkpoint else []) + ['--work-dir', work_dir,
                                                                '--cfg-options', *(cfg_options or []), experiment]
    try:
        start = time.perf_counter()
        metrics = run_test(argv)
        seconds = time.perf_counter() - start
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)
    missing = [key for key in ('J&F-Mean', 'J-Mean', 'F-Mean') if key not in metrics]
    if missing:
        raise ValueError(f'{config}: its evaluator reported no {", ".join(missing)} (got {sorted(metrics)}); '
                         'benchmark_vos needs a DAVIS-layout config scored by DAVISMetric')
    return {'config': config_name(config), 'checkpoint': osp.basename(checkpoint) if checkpoint else None,
            'dataset': dataset_name(config, cfg_options), 'J&F': round(float(metrics['J&F-Mean']), 4),
            'J': round(float(metrics['J-Mean']), 4), 'F': round(float(metrics['F-Mean']), 4),
            'seconds': round(seconds, 1)}


def benchmark_vos(configs: Sequence[str], checkpoints: Optional[Sequence[Optional[str]]] = None,
                  work_dir: Optional[str] = None, cfg_options: Optional[Sequence[str]] = None,
                  on_row: Optional[Callable[[List[dict]], None]] = None,
                  variants: Optional[Sequence[Variant]] = None) -> List[dict]:
    """One row per config (per config and variant, variants inner, each row naming its variant), in order;
    ``checkpoints`` has one entry per config (None: the config's own initialisation) or is None for none at all.
    A variant's options apply after ``cfg_options``. ``on_row(rows)`` is called after each row, so that a long
    run can save what it has measured so far."""
    if checkpoints is None:
        checkpoints = [None] * len(configs)
    if len(checkpoints) != len(configs):
        raise ValueError(f'{len(checkpoints)} checkpoints for {len(configs)} configs: give one per config '
                         "('none' for a config that initialises its own weights)")
    for config in configs:
        if not osp.isfile(config):
            raise FileNotFoundError(f'{config}: no such config')
    rows = []
    for index, (config, checkpoint) in enumerate(zip(configs, checkpoints)):
        for name, options in variants or [(None, [])]:
            row_dir = None if work_dir is None else os.path.join(
                work_dir, f'{index:02d}_{config_name(config)}' + (f'_{name}' if name else ''))
            row = evaluate_config(config, checkpoint, row_dir, list(cfg_options or []) + list(options) or None)
            rows.append(row if name is None else dict(variant=name, **row))
            if on_row is not None:
                on_row(rows)
    return rows
