"""RandomFramesPerVideoSampler: the reference FC sampler (up to N random frames per video, redrawn
every epoch), alone and split over processes; built from the paper config."""
import itertools
import os
from unittest import mock

import pytest
from mmengine.config import Config

from sfc_plugin.datasets import RandomFramesPerVideoSampler

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FramesList:
    """Stands in for VideoFramesDataset: records with a ``video`` key."""

    def __init__(self, frames_per_video):
        self.records = [dict(video=f'v{v}', img_path=f'v{v}/{i:05d}.jpg')
                        for v, count in enumerate(frames_per_video) for i in range(count)]

    def __len__(self):
        return len(self.records)

    def get_data_info(self, index):
        return self.records[index]


def test_each_epoch_draws_up_to_n_distinct_frames_per_video_anew():
    dataset = FramesList([10, 3, 25])
    sampler = RandomFramesPerVideoSampler(dataset, frames_per_video=5, seed=0)
    assert len(sampler) == 5 + 3 + 5
    stream = iter(sampler)
    seen = {video: set() for video in ('v0', 'v1', 'v2')}
    epochs = []
    for _ in range(40):
        epoch = [next(stream) for _ in range(len(sampler))]
        assert len(set(epoch)) == len(epoch)  # without replacement
        counts = {video: sum(dataset.get_data_info(i)['video'] == video for i in epoch) for video in seen}
        assert counts == {'v0': 5, 'v1': 3, 'v2': 5}
        for index in epoch:
            seen[dataset.get_data_info(index)['video']].add(index)
        epochs.append(epoch)
    assert epochs[0] != epochs[1]  # redrawn and reshuffled
    # over the epochs every frame of every video is seen (the fixed evenly spaced subset never does)
    assert {video: len(indices) for video, indices in seen.items()} == {'v0': 10, 'v1': 3, 'v2': 25}
    # the same seed gives the same stream
    again = iter(RandomFramesPerVideoSampler(dataset, frames_per_video=5, seed=0))
    assert [next(again) for _ in range(3 * len(sampler))] == list(itertools.chain(*epochs[:3]))


def test_processes_split_each_epoch():
    dataset = FramesList([7, 4])  # epoch of 6 + 4 = 10 frames over 3 processes: padded to 12
    streams = []
    for rank in range(3):
        with mock.patch('sfc_plugin.datasets.samplers.get_dist_info', return_value=(rank, 3)):
            sampler = RandomFramesPerVideoSampler(dataset, frames_per_video=6, seed=1)
        assert len(sampler) == 4
        streams.append(list(itertools.islice(iter(sampler), 4)))
    merged = [index for part in zip(*streams) for index in part]
    assert merged == list(sampler.epoch_order(0))
    assert len(set(merged)) == 10


def test_paper_config_uses_it_over_all_frames():
    cfg = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'fc', 'fc_r18_1xb96-60k_ytvos.py'))
    assert cfg.train_dataloader.sampler == dict(type='RandomFramesPerVideoSampler', frames_per_video=80)
    assert cfg.train_dataloader.dataset.frames_per_video is None
    with pytest.raises(ValueError, match='frames_per_video'):
        RandomFramesPerVideoSampler(FramesList([2]), frames_per_video=0)
