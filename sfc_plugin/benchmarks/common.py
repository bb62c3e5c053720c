"""What every benchmark report shares: which CPU a figure was measured on, and a fresh process per
measurement (so that its peak memory is its own)."""
import multiprocessing
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import torch

from sfc_plugin.propagation import resolve_select_dtype
from sfc_plugin.propagation.settings import cpu_supports


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_info() -> dict:
    """Which CPU a figure was measured on: model, the ISA level torch dispatches to, AMX, and the selection
    dtype that ``select_dtype='auto'`` picks there (None: exact fp32 only). Every benchmark report has it."""
    auto = resolve_select_dtype('auto', 'cpu')
    return {'cpu_model': cpu_model(), 'cpu_count': os.cpu_count(),
            'cpu_capability': torch.backends.cpu.get_cpu_capability(),
            'amx': cpu_supports('_is_amx_tile_supported'), 'amx_fp16': cpu_supports('_is_amx_fp16_supported'),
            'auto_select_dtype': str(auto) if auto is not None else None}


def in_fresh_process(function: Callable, *args):
    """Run ``function(*args)`` in a new interpreter, so that its peak RSS is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
        return pool.submit(function, *args).result()
