from .collate import video_collate
from .cycle_pairs import CyclePairDataset, same_category_pairs
from .image_datasets import *  # noqa: F401,F403
from .samplers import RandomFramesPerVideoSampler
from .transforms import *  # noqa: F401,F403
from .video_datasets import *  # noqa: F401,F403
