"""Shared fixtures and helpers: real photos from scikit-image as an image folder, random checkpoints."""
import os
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from sfc_plugin.generators.offline_data import write_skimage_photos
from sfc_plugin.registry import MODELS

# One thread per test process: the suite runs under pytest-xdist (one worker per core), and
# oversubscribed OpenMP threads slow torch on CPU by an order of magnitude. Subprocesses inherit it.
os.environ.setdefault('OMP_NUM_THREADS', '1')
torch.set_num_threads(1)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


@pytest.fixture(scope='session')
def real_image_dir(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp('real_photos'))
    write_skimage_photos(folder)
    return folder


def make_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Random weights for the config's model, with non-trivial BN statistics and gammas (the ResNets
    zero-initialise the last BN of each block, which would hide half of the network)."""
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(config).model)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def free_port() -> int:
    """A TCP port nobody listens on now, for a torchrun rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# A rank of a CPU (gloo) process group can abort at exit, after its work is done and written: gloo's
# connection threads see the other rank close first. A known race of the transport, not of the tools.
GLOO_TEARDOWN_ABORT = 'terminate called without an active exception'


def run_torchrun(script_args: list, **kwargs) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node 2 SCRIPT ARGS`` on a free port (``subprocess.run``
    keyword arguments; output captured as text). Run once more, on a new port, only if a rank aborted in gloo's
    teardown (``GLOO_TEARDOWN_ABORT``); any other failure, or that abort twice, is returned as it is."""
    for _ in range(2):
        result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                                 '--master_port', str(free_port()), *script_args],
                                capture_output=True, text=True, **kwargs)
        if result.returncode == 0 or GLOO_TEARDOWN_ABORT not in result.stderr:
            break
    return result
