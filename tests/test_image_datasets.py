"""Tests of the unlabelled training datasets and their bad-file policy."""
import logging
import os

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from sfc_plugin.datasets import (ImageFolderDataset, ImageListDataset, TooManyBadImagesError,
                                 VideoFramesDataset, evenly_spaced_indices)
from sfc_plugin.registry import DATASETS

PIPELINE = [
    dict(type='LoadRGBImage'),
    dict(type='TwoViewRandomResizedCrop', size=64),
    dict(type='PackTwoViewInputs'),
]


def write_image(path, value: int = 0, size=(8, 10)) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.full((*size, 3), value, np.uint8)
    assert cv2.imwrite(str(path), image)
    return str(path)


def write_corrupt(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as file:
        file.write(b'\xff\xd8 truncated garbage')
    return str(path)


def paths_of(dataset):
    return [dataset.get_data_info(index)['img_path'] for index in range(len(dataset))]


class RecordHandler(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def warnings_log():
    logger = MMLogger.get_current_instance()
    handler = RecordHandler()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_image_folder_finds_images_sorted(tmp_path):
    root = tmp_path / 'images'
    expected = [
        write_image(root / 'a.jpg'),
        write_image(root / 'b' / 'c.PNG'),
        write_image(root / 'b' / 'd' / 'e.webp'),
        write_image(root / 'z.bmp'),
    ]
    (root / 'notes.txt').write_text('not an image')
    write_image(root / '._a.jpg')  # macOS resource fork: hidden, ignored
    write_image(root / '.cache' / 'f.jpg')  # hidden folder, ignored
    dataset = ImageFolderDataset(str(root))
    assert paths_of(dataset) == sorted(expected)
    flat = ImageFolderDataset(str(root), recursive=False)
    assert paths_of(flat) == [expected[0], expected[3]]
    only_png = ImageFolderDataset(str(root), extensions=('.png',))
    assert paths_of(only_png) == [expected[1]]


def test_image_folder_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ImageFolderDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match='empty: no images found'):
        ImageFolderDataset(str(tmp_path / 'empty'))


def test_evenly_spaced_indices():
    assert evenly_spaced_indices(10, 4) == [0, 2, 5, 7]
    assert evenly_spaced_indices(3, 4) == [0, 1, 2]
    assert evenly_spaced_indices(5, None) == [0, 1, 2, 3, 4]
    assert evenly_spaced_indices(7, 1) == [0]
    for num_frames in range(1, 40):
        for num_samples in range(1, 45):
            indices = evenly_spaced_indices(num_frames, num_samples)
            assert len(indices) == min(num_frames, num_samples)
            assert indices == sorted(set(indices)) and indices[0] == 0
            assert indices[-1] < num_frames
            # gaps differ by at most one frame: evenly spaced
            gaps = [b - a for a, b in zip(indices, indices[1:])]
            assert not gaps or max(gaps) - min(gaps) <= 1


def test_video_frames_sampling_and_layouts(tmp_path):
    frames_root = tmp_path / 'ytvos' / 'train' / 'JPEGImages'
    video_a = [write_image(frames_root / 'vidA' / f'{k:05d}.jpg') for k in range(0, 50, 5)]  # 10
    video_b = [write_image(frames_root / 'vidB' / f'{k:05d}.jpg') for k in range(3)]
    (frames_root / 'emptyVid').mkdir()
    expected = [video_a[0], video_a[2], video_a[5], video_a[7]] + video_b
    dataset = VideoFramesDataset(str(tmp_path / 'ytvos' / 'train'), frames_per_video=4)
    assert paths_of(dataset) == expected
    assert dataset.get_data_info(0)['video'] == 'vidA'
    assert dataset.get_data_info(4)['video'] == 'vidB'
    direct = VideoFramesDataset(str(frames_root), frames_per_video=4)
    assert paths_of(direct) == expected
    everything = VideoFramesDataset(str(frames_root), frames_per_video=None)
    assert paths_of(everything) == video_a + video_b


def test_video_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        VideoFramesDataset(str(tmp_path / 'nowhere'))
    # Images directly in data_root, no video folders: not a frames tree.
    write_image(tmp_path / 'flat' / 'a.jpg')
    with pytest.raises(ValueError, match=r'flat: no frames found.*JPEGImages'):
        VideoFramesDataset(str(tmp_path / 'flat'))
    with pytest.raises(ValueError, match='frames_per_video'):
        VideoFramesDataset(str(tmp_path / 'flat'), frames_per_video=0)


def test_image_list_parsing(tmp_path):
    root = tmp_path / 'data'
    a = write_image(root / 'x' / 'a.jpg')
    b = write_image(root / 'b.png')
    c = write_image(tmp_path / 'elsewhere' / 'c.jpg')
    list_file = root / 'train.txt'
    list_file.write_text(f'# training images\n\nx/a.jpg\n   b.png  \n{c}\n#x/missing.jpg\n')
    dataset = ImageListDataset('train.txt', data_root=str(root))  # list joined to data_root
    assert paths_of(dataset) == [a, b, c]
    assert dataset.get_data_info(1)['img_path'] == os.path.join(str(root), 'b.png')


def test_image_list_errors(tmp_path):
    write_image(tmp_path / 'a.jpg')
    list_file = tmp_path / 'list.txt'
    list_file.write_text('a.jpg\ngone1.jpg\nsub/gone2.jpg\n')
    with pytest.raises(FileNotFoundError) as error:
        ImageListDataset(str(list_file), data_root=str(tmp_path))
    message = str(error.value)
    assert str(list_file) in message and '2 of 3 listed images do not exist' in message
    assert 'gone1.jpg' in message and os.path.join('sub', 'gone2.jpg') in message
    with pytest.raises(FileNotFoundError, match='no_list.txt: no such image list file'):
        ImageListDataset(str(tmp_path / 'no_list.txt'))
    empty = tmp_path / 'empty.txt'
    empty.write_text('# nothing\n\n')
    with pytest.raises(ValueError, match='empty.txt: no images found'):
        ImageListDataset(str(empty))


def test_bad_files_are_skipped_counted_and_logged_once(tmp_path, warnings_log):
    root = tmp_path / 'images'
    good = {k: write_image(root / f'{k}.png', value=10 * k) for k in (0, 1, 3, 4, 5)}
    bad = {k: write_corrupt(root / f'{k}.png') for k in (2, 6)}
    dataset = ImageFolderDataset(
        str(root), pipeline=[dict(type='sfc_plugin.LoadRGBImage')], max_bad_fraction=0.5,
        min_samples_for_limit=1)
    assert len(dataset) == 7
    # A bad index yields the next readable one (wrapping around at the end).
    served = [dataset[index]['img_path'] for index in range(7)]
    assert served == [good[0], good[1], good[3], good[3], good[4], good[5], good[0]]
    assert dataset[2]['img'][0, 0, 0] == 30
    # 7 indices + 2 skips, then dataset[2] again: bad 2 + good 3
    assert dataset.num_loads == 7 + 2 + 2 and dataset.num_bad_loads == 3
    assert list(dataset.last_bad_files) == [bad[2], bad[6], bad[2]]
    warnings = [r for r in warnings_log if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # each bad path once, although bad[2] failed twice
    assert bad[2] in warnings[0].getMessage() and bad[6] in warnings[1].getMessage()


def test_file_vanishing_after_start_is_a_bad_file(tmp_path):
    paths = [write_image(tmp_path / f'{k}.jpg') for k in range(3)]
    dataset = ImageFolderDataset(str(tmp_path), pipeline=[dict(type='sfc_plugin.LoadRGBImage')],
                                 min_samples_for_limit=100)
    os.remove(paths[0])
    assert dataset[0]['img_path'] == paths[1]
    assert dataset.num_bad_loads == 1


def test_bad_fraction_limit(tmp_path):
    write_corrupt(tmp_path / '0.jpg')
    for k in range(1, 10):
        write_image(tmp_path / f'{k}.jpg')
    kwargs = dict(pipeline=[dict(type='sfc_plugin.LoadRGBImage')], min_samples_for_limit=5)
    dataset = ImageFolderDataset(str(tmp_path), max_bad_fraction=0.1, **kwargs)
    dataset[0]  # loads 0 (bad) and 1: 50% bad, but fewer than 5 loads so far
    dataset[2]
    dataset[3]
    assert (dataset.num_loads, dataset.num_bad_loads) == (4, 1)
    with pytest.raises(TooManyBadImagesError) as error:
        dataset[4]  # 5th load, 1 of 5 = 20% > 10%
    message = str(error.value)
    assert '1 of 5 image loads' in message and str(tmp_path / '0.jpg') in message
    assert 'max_bad_fraction=0.1' in message
    tolerant = ImageFolderDataset(str(tmp_path), max_bad_fraction=0.25, **kwargs)
    for index in range(10):
        tolerant[index]
    assert (tolerant.num_loads, tolerant.num_bad_loads) == (11, 1)


def test_all_files_bad(tmp_path):
    for k in range(3):
        write_corrupt(tmp_path / f'{k}.jpg')
    dataset = ImageFolderDataset(str(tmp_path), pipeline=[dict(type='sfc_plugin.LoadRGBImage')],
                                 max_bad_fraction=1.0)
    with pytest.raises(TooManyBadImagesError, match='none of the 3 images'):
        dataset[1]


def test_bad_arguments(tmp_path):
    write_image(tmp_path / 'a.jpg')
    with pytest.raises(ValueError, match='max_bad_fraction'):
        ImageFolderDataset(str(tmp_path), max_bad_fraction=1.5)
    with pytest.raises(ValueError, match='min_samples_for_limit'):
        ImageFolderDataset(str(tmp_path), min_samples_for_limit=0)


def test_dataset_from_config_with_pipeline(tmp_path):
    for video in ('v1', 'v2'):
        for k in range(5):
            write_image(tmp_path / 'JPEGImages' / video / f'{k:05d}.jpg', value=k, size=(40, 50))
    cfg = dict(type='VideoFramesDataset', data_root=str(tmp_path), frames_per_video=2,
               pipeline=PIPELINE)
    with DefaultScope.overwrite_default_scope('sfc_plugin'):
        dataset = DATASETS.build(cfg)
    assert isinstance(dataset, VideoFramesDataset) and len(dataset) == 4
    sample = dataset[3]
    assert sample['inputs'].shape == (2, 3, 64, 64)
    assert sample['data_samples'].crop_boxes.shape == (2, 4)
    assert sample['data_samples'].img_path.endswith(os.path.join('v2', '00002.jpg'))


def test_dataloader_workers_are_deterministic_under_mmengine_seed(tmp_path):
    for k in range(8):
        write_image(tmp_path / f'{k}.png', value=k, size=(30, 40))
    dataloader_cfg = dict(
        batch_size=2,
        num_workers=2,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(type='ImageFolderDataset', data_root=str(tmp_path), pipeline=PIPELINE))

    def epoch_boxes(seed):
        with DefaultScope.overwrite_default_scope('sfc_plugin'):
            loader = Runner.build_dataloader(dataloader_cfg, seed=seed)
        return [(sample.img_path, sample.crop_boxes.numpy())
                for batch in loader for sample in batch['data_samples']]

    first, again, other = epoch_boxes(0), epoch_boxes(0), epoch_boxes(1)
    assert [path for path, _ in first] == [path for path, _ in again]
    np.testing.assert_array_equal(np.stack([b for _, b in first]), np.stack([b for _, b in again]))
    assert not np.array_equal(np.stack([b for _, b in first]), np.stack([b for _, b in other]))
