"""Shared fixtures: real photos from scikit-image written as an image folder."""
import os
import sys

import pytest
import torch

from sfc_plugin.datasets.offline_data import write_skimage_photos

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
