"""Collate functions for label-propagation evaluation."""
from typing import List, Sequence

from sfc_plugin.registry import FUNCTIONS


@FUNCTIONS.register_module()
def video_collate(data_batch: Sequence[dict]) -> List[dict]:
    """Keep each video sample as it is: propagation reads a video's frames one at a time."""
    return list(data_batch)
