"""Unlabelled image datasets for self-supervised (FC) training, tolerant of a few bad files.

All three datasets yield ``dict(img_path=...)`` records in a deterministic order and share one
bad-file policy (``UnlabelledImageDataset``): an unreadable image is skipped, counted and logged,
and only a share of bad files above ``max_bad_fraction`` stops the run.
"""
import logging
import os
from collections import deque
from typing import Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from sfc_plugin.registry import DATASETS
from sfc_plugin.utils import IMAGE_EXTENSIONS, ImageReadError

__all__ = [
    'UnlabelledImageDataset', 'ImageFolderDataset', 'VideoFramesDataset', 'ImageListDataset',
    'TooManyBadImagesError', 'evenly_spaced_indices'
]


class TooManyBadImagesError(RuntimeError):
    """Too large a share of the images a dataset tried to load was unreadable."""


class UnlabelledImageDataset(BaseDataset):
    """Base of the training image datasets: a list of image paths and the bad-file policy.

    Subclasses implement ``load_data_list`` (returning ``[dict(img_path=...), ...]``, typically via
    ``_to_data_list``). ``__getitem__`` runs the pipeline on sample ``idx``; when it raises
    ``ImageReadError`` (corrupt, truncated or vanished file) or returns None, the next index
    (``idx + 1``, wrapping around) is tried instead, so the skip is deterministic. Every failed
    load is counted, and each bad path is logged once as a WARNING. When at least
    ``min_samples_for_limit`` loads have been tried and more than ``max_bad_fraction`` of them
    failed, ``TooManyBadImagesError`` names the counts and the last bad files.

    The counters (``num_loads``, ``num_bad_loads``) live in the dataset object, so they are per
    process: each dataloader worker counts the loads it does itself.

    Args:
        data_root: Root folder of the images.
        ann_file: Annotation (list) file, joined to ``data_root`` when relative (mmengine's rule).
        pipeline: Transforms (configs or callables) applied to each record.
        max_bad_fraction: Largest tolerated share of failed loads, in [0, 1].
        min_samples_for_limit: Loads to try before the share is checked, so that one bad file
            among the first few does not abort the run.
        indices: Keep only these samples (or the first ``indices`` ones), as in mmengine.
        serialize_data: Store the records as one byte array shared by the workers (mmengine).
        lazy_init: Defer scanning the files until first use (mmengine).
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 max_bad_fraction: float = 0.01,
                 min_samples_for_limit: int = 1000,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f'max_bad_fraction must be in [0, 1], got {max_bad_fraction!r}')
        if min_samples_for_limit < 1:
            raise ValueError(f'min_samples_for_limit must be >= 1, got {min_samples_for_limit!r}')
        self.max_bad_fraction = max_bad_fraction
        self.min_samples_for_limit = min_samples_for_limit
        self.num_loads = 0
        self.num_bad_loads = 0
        self.last_bad_files: deque = deque(maxlen=5)
        self._logged_bad_files: set = set()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=dict(),
            pipeline=list(pipeline),
            indices=indices,
            serialize_data=serialize_data,
            lazy_init=lazy_init)

    @property
    def source(self) -> str:
        """The file or folder the images were listed from (for messages)."""
        return self.ann_file or self.data_root

    def _to_data_list(self, image_paths: List[str]) -> List[dict]:
        if not image_paths:
            raise ValueError(f'{self.source}: no images found for {type(self).__name__}')
        return [dict(img_path=path) for path in image_paths]

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        num_samples = len(self)
        for offset in range(num_samples):
            data = self._load((idx + offset) % num_samples)
            self._check_bad_fraction()
            if data is not None:
                return data
        raise TooManyBadImagesError(
            f'{self.source}: none of the {num_samples} images could be loaded; '
            f'last bad files: {list(self.last_bad_files)}')

    def _load(self, index: int) -> Optional[dict]:
        """Run the pipeline on sample ``index``; None (counted and logged) if its file is bad."""
        self.num_loads += 1
        try:
            return self.prepare_data(index)
        except ImageReadError as error:
            path = self.get_data_info(index)['img_path']
            self.num_bad_loads += 1
            self.last_bad_files.append(path)
            if path not in self._logged_bad_files:
                self._logged_bad_files.add(path)
                print_log(
                    f'Skipping unreadable image: {error} ({self.num_bad_loads} of '
                    f'{self.num_loads} loads failed so far in this process)',
                    logger='current',
                    level=logging.WARNING)
            return None

    def _check_bad_fraction(self) -> None:
        if self.num_loads < self.min_samples_for_limit:
            return
        bad_fraction = self.num_bad_loads / self.num_loads
        if bad_fraction > self.max_bad_fraction:
            raise TooManyBadImagesError(
                f'{self.source}: {self.num_bad_loads} of {self.num_loads} image loads in this '
                f'process failed ({bad_fraction:.2%}), more than max_bad_fraction='
                f'{self.max_bad_fraction}; last bad files: {list(self.last_bad_files)}. '
                'Fix or remove these files, or raise max_bad_fraction.')


def _has_extension(name: str, extensions: Sequence[str]) -> bool:
    return not name.startswith('.') and name.lower().endswith(tuple(extensions))


@DATASETS.register_module()
class ImageFolderDataset(UnlabelledImageDataset):
    """Every image file under ``data_root`` (e.g. COCO or ImageNet train images), sorted by path.

    Args:
        data_root: Folder to scan.
        extensions: File name endings that count as images (case-insensitive).
        recursive: Also scan subfolders (symbolic links to folders are followed).
        **kwargs: ``pipeline``, ``max_bad_fraction`` and the others of ``UnlabelledImageDataset``.

    Hidden files and folders (names starting with '.', e.g. macOS '._x.jpg') are ignored.
    """

    def __init__(self,
                 data_root: str,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 recursive: bool = True,
                 **kwargs) -> None:
        self.extensions = tuple(extension.lower() for extension in extensions)
        self.recursive = recursive
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not os.path.isdir(self.data_root):
            raise FileNotFoundError(f'{self.data_root}: no such image folder')
        image_paths = []
        if self.recursive:
            for folder, subfolders, names in os.walk(self.data_root, followlinks=True):
                subfolders[:] = [name for name in subfolders if not name.startswith('.')]
                image_paths += [os.path.join(folder, name) for name in names
                                if _has_extension(name, self.extensions)]
        else:
            image_paths = [os.path.join(self.data_root, name) for name in os.listdir(self.data_root)
                           if _has_extension(name, self.extensions)
                           and os.path.isfile(os.path.join(self.data_root, name))]
        return self._to_data_list(sorted(image_paths))


def evenly_spaced_indices(num_frames: int, num_samples: Optional[int]) -> List[int]:
    """Indices ``k * num_frames // num_samples`` for k < num_samples: every frame if there are
    at most ``num_samples`` (or ``num_samples`` is None), else evenly spaced from frame 0."""
    if num_samples is None or num_frames <= num_samples:
        return list(range(num_frames))
    return [k * num_frames // num_samples for k in range(num_samples)]


@DATASETS.register_module()
class VideoFramesDataset(UnlabelledImageDataset):
    """Frames of a YouTube-VOS-style tree ``<data_root>/JPEGImages/<video>/*.jpg``.

    ``data_root`` may also be the ``JPEGImages`` folder itself (any folder of per-video frame
    folders). Videos and frames are taken in sorted order; from a video with more than
    ``frames_per_video`` frames, the sorted frames at positions
    ``k * num_frames // frames_per_video`` (k = 0 .. frames_per_video - 1) are kept: evenly spaced,
    starting at the first frame, the same on every run.

    Args:
        data_root: The dataset folder holding ``JPEGImages``, or that folder itself.
        frames_per_video: Most frames taken from one video; None takes all.
        extensions: File name endings that count as frames (case-insensitive).
        **kwargs: ``pipeline``, ``max_bad_fraction`` and the others of ``UnlabelledImageDataset``.

    Each record is ``dict(img_path=..., video=<video folder name>)``.
    """

    def __init__(self,
                 data_root: str,
                 frames_per_video: Optional[int] = 80,
                 extensions: Sequence[str] = ('.jpg', '.jpeg', '.png'),
                 **kwargs) -> None:
        if frames_per_video is not None and frames_per_video < 1:
            raise ValueError(f'frames_per_video must be >= 1 or None, got {frames_per_video!r}')
        self.frames_per_video = frames_per_video
        self.extensions = tuple(extension.lower() for extension in extensions)
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not os.path.isdir(self.data_root):
            raise FileNotFoundError(f'{self.data_root}: no such frames folder')
        frames_root = os.path.join(self.data_root, 'JPEGImages')
        if not os.path.isdir(frames_root):
            frames_root = self.data_root
        data_list, empty_videos = [], []
        for video in sorted(os.listdir(frames_root)):
            video_dir = os.path.join(frames_root, video)
            if video.startswith('.') or not os.path.isdir(video_dir):
                continue
            frames = sorted(name for name in os.listdir(video_dir)
                            if _has_extension(name, self.extensions))
            if not frames:
                empty_videos.append(video)
            for index in evenly_spaced_indices(len(frames), self.frames_per_video):
                data_list.append(dict(img_path=os.path.join(video_dir, frames[index]), video=video))
        if not data_list:
            raise ValueError(
                f'{self.data_root}: no frames found; expected a YouTube-VOS-style tree '
                f'<data_root>/JPEGImages/<video>/*{self.extensions[0]} or data_root pointing at '
                f'the JPEGImages folder itself (frame endings {self.extensions})')
        if empty_videos:
            print_log(
                f'{frames_root}: {len(empty_videos)} video folders hold no frames and are '
                f'skipped, e.g. {empty_videos[:5]}',
                logger='current',
                level=logging.WARNING)
        return data_list


@DATASETS.register_module()
class ImageListDataset(UnlabelledImageDataset):
    """Images named in a text file, one path per line, in the file's order.

    Paths are relative to ``data_root`` (absolute ones are kept); leading and trailing white space
    is stripped, blank lines and lines starting with '#' are skipped. A relative ``ann_file`` is
    itself joined to ``data_root`` (mmengine's rule). Listed files that do not exist are reported
    together at start-up, before any training step.

    Args:
        ann_file: The list file.
        data_root: Folder the listed paths are relative to ('' = the working directory).
        **kwargs: ``pipeline``, ``max_bad_fraction`` and the others of ``UnlabelledImageDataset``.
    """

    def __init__(self, ann_file: str, data_root: str = '', **kwargs) -> None:
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not os.path.isfile(self.ann_file):
            raise FileNotFoundError(f'{self.ann_file}: no such image list file')
        with open(self.ann_file, encoding='utf-8') as list_file:
            lines = [line.strip() for line in list_file]
        image_paths = [os.path.join(self.data_root, line) for line in lines
                       if line and not line.startswith('#')]
        missing = [path for path in image_paths if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} of {len(image_paths)} listed images do not exist '
                f'(paths relative to data_root={self.data_root!r}); first missing: {missing[:5]}')
        return self._to_data_list(image_paths)
