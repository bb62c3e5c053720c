"""The official FC training sampler: every epoch, up to N random frames of every video."""
from typing import Dict, Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Dataset, Sampler

from sfc_plugin.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class RandomFramesPerVideoSampler(Sampler):
    """Endless sampler that redraws up to ``frames_per_video`` random frames of each video per epoch.

    The SFC reference training builds, at the start of every epoch, a list holding up to 80 frames
    of each YouTube-VOS video drawn at random (without replacement), and shuffles it; so over the
    epochs every frame of a long video is seen. Use it with ``VideoFramesDataset(frames_per_video=
    None)`` (all frames listed; records carry their ``video``) and an iteration-based loop. Under
    distributed training each process takes every ``world_size``-th index of the same epoch order
    (the seed is synchronised), after padding the epoch to a multiple of ``world_size``.

    Args:
        dataset: a dataset whose ``get_data_info(i)`` has a ``video`` key.
        frames_per_video: most frames drawn from one video per epoch.
        seed: random seed (None: a seed shared by all processes).
    """

    def __init__(self, dataset: Dataset, frames_per_video: int = 80, seed: Optional[int] = None) -> None:
        if frames_per_video < 1:
            raise ValueError(f'frames_per_video must be >= 1, got {frames_per_video}')
        self.rank, self.world_size = get_dist_info()
        self.frames_per_video = frames_per_video
        self.seed = sync_random_seed() if seed is None else seed
        videos: Dict[str, List[int]] = {}
        for index in range(len(dataset)):
            videos.setdefault(dataset.get_data_info(index)['video'], []).append(index)
        self.video_indices = [videos[name] for name in sorted(videos)]
        epoch_size = sum(min(len(indices), frames_per_video) for indices in self.video_indices)
        self.num_samples = -(-epoch_size // self.world_size)  # per process and epoch
        self.epoch = 0

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Dataset indices of one epoch, in order, for all processes together (padded)."""
        rng = np.random.default_rng([self.seed, epoch])
        drawn = [rng.choice(indices, size=min(len(indices), self.frames_per_video), replace=False)
                 for indices in self.video_indices]
        order = rng.permutation(np.concatenate(drawn))
        padding = self.num_samples * self.world_size - len(order)
        return np.concatenate([order, order[:padding]])

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        while True:
            yield from (int(index) for index in self.epoch_order(epoch)[self.rank::self.world_size])
            epoch += 1

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
