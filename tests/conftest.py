"""Shared fixtures and helpers: real photos from scikit-image as an image folder, random checkpoints."""
import os
import socket
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
