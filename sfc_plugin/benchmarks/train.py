"""Training throughput: images/s of a config and the share of the time spent waiting for data
(``tools/benchmark_train.py``)."""
import contextlib
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.runner import Runner

from sfc_plugin.apis.inference import load_config
from .common import cpu_info


def benchmark_training(config: str,
                       data_root: str,
                       iters: int = 10,
                       warmup: int = 2,
                       batch_size: Optional[int] = None,
                       num_workers: Optional[int] = None) -> dict:
    """Train ``iters`` iterations of ``config`` on the images under ``data_root`` and time them.

    The first ``warmup`` iterations are not counted. ``time`` and ``data_time`` are mmengine's
    IterTimerHook figures: ``data_time`` is the wait for the next batch, so the data share is
    the fraction of each iteration spent waiting for the dataloader.
    """
    cfg = load_config(config)
    cfg.work_dir = tempfile.mkdtemp(prefix='sfc_benchmark_train_')
    # a name of its own: mmengine's message hub (whose timings this reads) and visualizer are looked up by
    # experiment name, by default the config's file name and the second the run started
    cfg.experiment_name = f'{osp.splitext(osp.basename(config))[0]}_{time.time_ns()}'
    cfg.train_cfg.max_iters = warmup + iters
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10**9)
    dataloader = cfg.train_dataloader
    dataloader.dataset.data_root = data_root
    if dataloader.dataset.type in ('VideoFramesDataset', 'sfc_plugin.VideoFramesDataset') and not osp.isdir(
            osp.join(data_root, 'JPEGImages')):
        dataloader.dataset.type = 'ImageFolderDataset'
        dataloader.dataset.pop('frames_per_video', None)
    if batch_size is not None:
        dataloader.batch_size = batch_size
    if num_workers is not None:
        dataloader.num_workers = num_workers
        dataloader.persistent_workers = num_workers > 0 and dataloader.get('persistent_workers', False)

    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    try:
        runner.train()
    finally:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)
    wall = time.perf_counter() - start
    scalars = runner.message_hub.log_scalars
    iter_times = np.asarray(scalars['train/time'].data[0])[warmup:]
    data_times = np.asarray(scalars['train/data_time'].data[0])[warmup:]
    images_per_iter = dataloader.batch_size
    crop = next(step for step in dataloader.dataset.pipeline if 'RandomResizedCrop' in step['type'])['size']
    return dict(
        config=config,
        batch_size=images_per_iter,
        crop_size=crop,
        num_workers=dataloader.num_workers,
        measured_iters=len(iter_times),
        seconds_per_iter=round(float(iter_times.mean()), 4),
        images_per_second=round(float(images_per_iter / iter_times.mean()), 3),
        data_wait_share=round(float(data_times.sum() / iter_times.sum()), 4),
        wall_seconds=round(wall, 1),
        torch_threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        device='cuda' if torch.cuda.is_available() else 'cpu',
    )


def training_report(configs: Sequence[str], data_root: Optional[str] = None, iters: int = 10, warmup: int = 2,
                    batch_size: Optional[int] = None, num_workers: Optional[int] = None) -> dict:
    """:func:`benchmark_training` of each config, with the data folder and the CPU. Without ``data_root``,
    scikit-image's photos (longest side 512) are written to a new temporary folder. mmengine's logs go to
    stderr (stdout stays free for the report)."""
    if data_root is None:
        from sfc_plugin.generators.offline_data import write_skimage_photos
        data_root = tempfile.mkdtemp(prefix='sfc_photos_')
        write_skimage_photos(data_root, max_side=512)
    with contextlib.redirect_stdout(sys.stderr):
        rows = [benchmark_training(config, data_root, iters, warmup, batch_size, num_workers) for config in configs]
    return dict(data_root=data_root, cpu=cpu_info(), results=rows)
