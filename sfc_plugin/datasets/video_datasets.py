"""Label-propagation evaluation datasets: DAVIS-2017, JHMDB (pose) and VIP (human parts).

One sample is one video, a dict described in :mod:`sfc_plugin.structures.video_sample`.

Checks: at load time the structure (list file, frame folders, frame 0's annotation, frames and
annotations that correspond) always; with ``validate_on_load`` (default) also every video's
contents as ``validate_video_sample`` does (image headers, frame 0's annotation decoded). All
problems found are reported together in one ``VideoDataError`` naming the files.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.io
from mmengine.dataset import BaseDataset

from sfc_plugin.registry import DATASETS
from sfc_plugin.structures import JHMDB_JOINTS, VIP_CLASSES, VideoDataError, image_size, validate_video_sample
from sfc_plugin.utils import problems_summary

__all__ = ['VideoDataError', 'validate_video_sample', 'DAVISDataset', 'JHMDBDataset', 'VIPDataset']


def _read_list(path: str, what: str) -> List[str]:
    """Non-empty, stripped lines of a list file; VideoDataError naming it when absent or empty."""
    if not os.path.isfile(path):
        raise VideoDataError(f'{path}: {what} list file not found')
    with open(path) as file:
        lines = [line.strip() for line in file if line.strip()]
    if not lines:
        raise VideoDataError(f'{path}: {what} list file is empty')
    return lines


def _sorted_files(folder: str, extensions: Sequence[str]) -> List[str]:
    """Files of ``folder`` with one of ``extensions``, in frame order (numeric stems by value)."""
    names = [name for name in os.listdir(folder) if name.lower().endswith(tuple(extensions))]
    stems = [os.path.splitext(name)[0] for name in names]
    if all(stem.isdigit() for stem in stems):
        names = [name for _, name in sorted(zip((int(stem) for stem in stems), names))]
    else:
        names = sorted(names)
    return [os.path.join(folder, name) for name in names]


def _frames_and_annotations(video: str, frame_dir: str, anno_dir: Optional[str],
                            frame_extensions: Sequence[str],
                            require_all_annotations: bool) -> Tuple[List[str], List[Optional[str]]]:
    """Frame paths and the matching annotation paths (by file stem) of one video.

    Raises VideoDataError when there are no frames, when frame 0 has no annotation, when an
    annotation has no frame, or (``require_all_annotations``) when some later frames are
    annotated and others are not (a folder with frame 0's annotation only is accepted: the
    DAVIS test-dev layout).
    """
    if not os.path.isdir(frame_dir):
        raise VideoDataError(f'{frame_dir}: frame folder of video {video!r} not found')
    frame_paths = _sorted_files(frame_dir, frame_extensions)
    if not frame_paths:
        raise VideoDataError(f'{frame_dir}: no frames ({"/".join(frame_extensions)}) for video {video!r}')
    if anno_dir is None:
        return frame_paths, []
    if not os.path.isdir(anno_dir):
        raise VideoDataError(f'{anno_dir}: annotation folder of video {video!r} not found')
    anno_by_stem = {os.path.splitext(os.path.basename(path))[0]: path
                    for path in _sorted_files(anno_dir, ('.png', ))}
    frame_stems = [os.path.splitext(os.path.basename(path))[0] for path in frame_paths]
    orphans = sorted(set(anno_by_stem) - set(frame_stems))
    if orphans:
        raise VideoDataError(f'{anno_by_stem[orphans[0]]}: annotation without a frame in {frame_dir} '
                             f'({len(anno_by_stem)} annotations, {len(frame_paths)} frames)')
    anno_paths = [anno_by_stem.get(stem) for stem in frame_stems]
    if anno_paths[0] is None:
        raise VideoDataError(f'{os.path.join(anno_dir, frame_stems[0] + ".png")}: frame 0 annotation '
                             f'of video {video!r} not found')
    if require_all_annotations and 1 < len(anno_by_stem) < len(frame_paths):
        missing = next(stem for stem, path in zip(frame_stems, anno_paths) if path is None)
        raise VideoDataError(f'{os.path.join(anno_dir, missing + ".png")}: annotation missing: '
                             f'{len(anno_by_stem)} annotations for {len(frame_paths)} frames of video {video!r}')
    return frame_paths, anno_paths


class _VideoDataset(BaseDataset):
    """Shared loading of the video datasets: one record per listed video, every problem collected.

    Subclasses list their videos (``_video_entries``) and turn one entry into a sample
    (``_load_video``, raising VideoDataError); with ``validate_on_load`` each sample also goes
    through ``validate_video_sample``. ``test_mode`` defaults to True (evaluation datasets).
    """

    def __init__(self, validate_on_load: bool = True, **kwargs) -> None:
        self.validate_on_load = validate_on_load
        kwargs.setdefault('test_mode', True)
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        records, problems = [], []
        for entry in self._video_entries():
            try:
                record = self._load_video(entry)
                if self.validate_on_load:
                    validate_video_sample(record)
            except VideoDataError as error:
                problems.append(str(error))
                continue
            records.append(record)
        if problems:
            raise VideoDataError(f'{type(self).__name__} ({self.ann_file}): {len(problems)} of '
                                 f'{len(problems) + len(records)} videos have problems:{problems_summary(problems)}')
        return records

    def _video_entries(self) -> list:
        """The dataset's list of videos, one entry per video, in order."""
        raise NotImplementedError

    def _load_video(self, entry) -> dict:
        """The sample dict of one entry of ``_video_entries``."""
        raise NotImplementedError


@DATASETS.register_module()
class DAVISDataset(_VideoDataset):
    """DAVIS-2017 semi-supervised video object segmentation (``task='vos'``).

    Layout under ``data_root``: ``JPEGImages/<resolution>/<video>/00000.jpg``,
    ``Annotations/<resolution>/<video>/00000.png`` (indexed PNGs: 0 background, 1..N objects,
    255 void) and ``ImageSets/<year>/<split>.txt`` (one video name per line).

    Args:
        data_root: DAVIS root folder.
        split: Name of the list file in ``ImageSets/<year>/`` ('val', 'train', 'test-dev').
        year: Folder of ``ImageSets`` to read the list from.
        resolution: '480p' or 'Full-Resolution'.
        input_size: (H, W) the frames are resized to before the network (None: native size, the
            DAVIS protocol); predictions are still scored at the native size.
        validate_on_load: Also run ``validate_video_sample`` on every video at load time.
        **kwargs: ``BaseDataset`` arguments (``pipeline``, ``indices``, ``lazy_init``, ...).
    """
    METAINFO = dict(dataset_name='DAVIS', task='vos')

    def __init__(self, data_root: str, split: str = 'val', year: int = 2017, resolution: str = '480p',
                 input_size: Optional[Sequence[int]] = None, validate_on_load: bool = True, **kwargs) -> None:
        self.resolution = resolution
        self.input_size = tuple(int(v) for v in input_size) if input_size is not None else None
        super().__init__(
            validate_on_load=validate_on_load, data_root=data_root,
            ann_file=os.path.join('ImageSets', str(year), f'{split}.txt'), **kwargs)

    def _video_entries(self) -> List[str]:
        return _read_list(self.ann_file, 'DAVIS video')

    def _load_video(self, video: str) -> dict:
        frame_paths, anno_paths = _frames_and_annotations(
            video, os.path.join(self.data_root, 'JPEGImages', self.resolution, video),
            os.path.join(self.data_root, 'Annotations', self.resolution, video), ('.jpg', '.jpeg'),
            require_all_annotations=True)
        return dict(video=video, frame_paths=frame_paths, anno_paths=anno_paths,
                    first_anno_path=anno_paths[0], keypoints=None, ori_shape=image_size(frame_paths[0]),
                    input_size=self.input_size, task='vos')


@DATASETS.register_module()
class JHMDBDataset(_VideoDataset):
    """JHMDB pose propagation (``task='pose'``), split-1 list as used by UVC and CRW.

    List-file format (``ann_file``): one video per non-empty line, two whitespace-separated paths
    in either order: the video's ``joint_positions.mat`` (recognised by its ``.mat`` suffix) and
    its folder of frames (``00001.png``, ... ; ``.png`` or ``.jpg``, ordered by number).
    Relative paths are joined to ``data_root``. Example (CRW's order)::

        joint_positions/<action>/<video>/joint_positions.mat Rename_Images/<action>/<video>

    ``pos_img`` in the .mat file is (2, 15, T), 1-based x, y; the sample's ``keypoints`` are
    (T, 15, 2), 0-based. A video may have more frames than annotated ones (the extra frames are
    propagated, not scored), never fewer. The video name is the frame folder's name.

    Args:
        data_root: Root the list's relative paths are joined to.
        ann_file: The list file (joined to ``data_root`` when relative).
        input_size: (H, W) the frames are resized to before the network (reference: 320 x 320).
        validate_on_load: Also run ``validate_video_sample`` on every video at load time.
        **kwargs: ``BaseDataset`` arguments.
    """
    METAINFO = dict(dataset_name='JHMDB', task='pose', joints=JHMDB_JOINTS)

    def __init__(self, data_root: str = '', ann_file: str = '', input_size: Sequence[int] = (320, 320),
                 validate_on_load: bool = True, **kwargs) -> None:
        self.input_size = tuple(input_size)
        super().__init__(validate_on_load=validate_on_load, data_root=data_root, ann_file=ann_file, **kwargs)

    def _video_entries(self) -> List[Tuple[int, str]]:
        return list(enumerate(_read_list(self.ann_file, 'JHMDB video'), start=1))

    def _load_video(self, entry: Tuple[int, str]) -> dict:
        line_number, line = entry
        paths = line.split()
        mat_paths = [path for path in paths if path.endswith('.mat')]
        if len(paths) != 2 or len(mat_paths) != 1:
            raise VideoDataError(f'{self.ann_file}:{line_number}: expected "<joint_positions.mat> '
                                 f'<frame folder>" (either order), got {line!r}')
        frame_dir = next(path for path in paths if not path.endswith('.mat'))
        frame_dir = os.path.join(self.data_root, frame_dir).rstrip('/')
        mat_path = os.path.join(self.data_root, mat_paths[0])
        video = os.path.basename(frame_dir)
        frame_paths, _ = _frames_and_annotations(video, frame_dir, None, ('.png', '.jpg', '.jpeg'),
                                                 require_all_annotations=False)
        keypoints = _read_joint_positions(mat_path)
        if len(keypoints) > len(frame_paths):
            raise VideoDataError(f'{mat_path}: joints for {len(keypoints)} frames, but {frame_dir} '
                                 f'holds only {len(frame_paths)} frames')
        return dict(video=video, frame_paths=frame_paths, anno_paths=[], first_anno_path=None,
                    keypoints=keypoints, ori_shape=image_size(frame_paths[0]), input_size=self.input_size,
                    task='pose')

    def load_data_list(self) -> List[dict]:
        records = super().load_data_list()
        names: Dict[str, str] = {}
        for record in records:
            folder = os.path.dirname(record['frame_paths'][0])
            if record['video'] in names:
                raise VideoDataError(f'{self.ann_file}: two videos named {record["video"]!r} '
                                     f'({names[record["video"]]} and {folder}); their outputs would collide')
            names[record['video']] = folder
        return records


def _read_joint_positions(mat_path: str) -> np.ndarray:
    """(T, 15, 2) 0-based x, y from a JHMDB ``joint_positions.mat`` (``pos_img`` (2, 15, T), 1-based)."""
    if not os.path.isfile(mat_path):
        raise VideoDataError(f'{mat_path}: joint positions file not found')
    try:
        content = scipy.io.loadmat(mat_path)
    except (ValueError, OSError, TypeError) as error:
        raise VideoDataError(f'{mat_path}: cannot read the .mat file: {error}') from error
    if 'pos_img' not in content:
        found = sorted(name for name in content if not name.startswith('__'))
        raise VideoDataError(f'{mat_path}: no "pos_img" variable (found: {found})')
    pos_img = np.asarray(content['pos_img'], dtype=np.float64)
    if pos_img.ndim != 3 or pos_img.shape[:2] != (2, len(JHMDB_JOINTS)):
        raise VideoDataError(f'{mat_path}: "pos_img" must be (2, {len(JHMDB_JOINTS)}, T), got {pos_img.shape}')
    return pos_img.transpose(2, 1, 0) - 1


@DATASETS.register_module()
class VIPDataset(_VideoDataset):
    """VIP (Video Instance-level Parsing) human-part propagation (``task='parts'``).

    Layout under ``data_root``: ``VIP_Fine/Images/<video>/<frame>.jpg``,
    ``VIP_Fine/Category_ids/<video>/<frame>.png`` (category ids 0..19, 0 background; frames
    without a PNG are not scored) and the list ``VIP_Fine/lists/val_videos.txt`` (one video name
    per line).

    Args:
        data_root: Folder holding ``VIP_Fine``.
        ann_file: The list of videos (joined to ``data_root`` when relative).
        input_size: (H, W) the frames are resized to before the network (reference: 560 x 560).
        validate_on_load: Also run ``validate_video_sample`` on every video at load time.
        **kwargs: ``BaseDataset`` arguments.
    """
    METAINFO = dict(dataset_name='VIP', task='parts', classes=VIP_CLASSES)

    def __init__(self, data_root: str, ann_file: str = 'VIP_Fine/lists/val_videos.txt',
                 input_size: Sequence[int] = (560, 560), validate_on_load: bool = True, **kwargs) -> None:
        self.input_size = tuple(input_size)
        super().__init__(validate_on_load=validate_on_load, data_root=data_root, ann_file=ann_file, **kwargs)

    def _video_entries(self) -> List[str]:
        return _read_list(self.ann_file, 'VIP video')

    def _load_video(self, video: str) -> dict:
        frame_paths, anno_paths = _frames_and_annotations(
            video, os.path.join(self.data_root, 'VIP_Fine', 'Images', video),
            os.path.join(self.data_root, 'VIP_Fine', 'Category_ids', video), ('.jpg', '.jpeg', '.png'),
            require_all_annotations=False)
        return dict(video=video, frame_paths=frame_paths, anno_paths=anno_paths,
                    first_anno_path=anno_paths[0], keypoints=None, ori_shape=image_size(frame_paths[0]),
                    input_size=self.input_size, task='parts')
