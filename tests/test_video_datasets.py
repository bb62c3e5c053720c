"""DAVIS, JHMDB and VIP datasets read the layouts video_fixtures writes, and name bad files."""
import os
import shutil

import numpy as np
import pytest
import scipy.io
from PIL import Image
from video_fixtures import make_davis, make_jhmdb, make_vip

from sfc_plugin.datasets import (DAVISDataset, JHMDBDataset, VideoDataError, VIPDataset,
                                 validate_video_sample)
from sfc_plugin.registry import DATASETS
from sfc_plugin.utils.io import read_label_png, write_label_png

SAMPLE_KEYS = {'video', 'frame_paths', 'anno_paths', 'first_anno_path', 'keypoints', 'ori_shape', 'input_size',
               'task'}


@pytest.fixture(scope='module')
def davis_template(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('davis_template'))
    truth = make_davis(root, {'bear': (5, 36, 48, 2), 'cows': (4, 30, 40, 1)})
    return root, truth


@pytest.fixture
def davis_root(davis_template, tmp_path):
    """A fresh, writable copy of the DAVIS fixture per test."""
    root = str(tmp_path / 'davis')
    shutil.copytree(davis_template[0], root)
    return root


def davis_file(root, kind, video, t):
    ext = 'jpg' if kind == 'JPEGImages' else 'png'
    return os.path.join(root, kind, '480p', video, f'{t:05d}.{ext}')


def test_davis_reads_the_layout(davis_template):
    root, truth = davis_template
    dataset = DATASETS.build(dict(type='DAVISDataset', data_root=root, lazy_init=True))
    assert len(dataset) == 2
    sample = dataset[0]
    assert SAMPLE_KEYS <= set(sample)
    assert sample['video'] == 'bear' and sample['task'] == 'vos'
    assert sample['frame_paths'] == [davis_file(root, 'JPEGImages', 'bear', t) for t in range(5)]
    assert sample['anno_paths'] == [davis_file(root, 'Annotations', 'bear', t) for t in range(5)]
    assert sample['first_anno_path'] == sample['anno_paths'][0]
    assert sample['ori_shape'] == (36, 48) and sample['input_size'] is None and sample['keypoints'] is None
    ids, _ = read_label_png(sample['anno_paths'][3])
    np.testing.assert_array_equal(ids, truth['bear'][3])
    assert dataset[1]['video'] == 'cows' and len(dataset[1]['frame_paths']) == 4
    validate_video_sample(sample)


def test_davis_frames_sorted_by_number(tmp_path):
    root = str(tmp_path / 'davis')
    make_davis(root, {'v': (12, 20, 24, 1)})
    sample = DAVISDataset(root)[0]
    assert [os.path.basename(p) for p in sample['frame_paths']][-3:] == ['00009.jpg', '00010.jpg', '00011.jpg']


def test_davis_first_frame_only_annotations_are_accepted(davis_root):
    for t in range(1, 5):
        os.remove(davis_file(davis_root, 'Annotations', 'bear', t))
    sample = DAVISDataset(davis_root)[0]
    assert sample['anno_paths'][0] is not None and sample['anno_paths'][1:] == [None] * 4


def load_error(dataset_cls, *args, **kwargs) -> str:
    with pytest.raises(VideoDataError) as info:
        dataset_cls(*args, **kwargs)
    return str(info.value)


def test_missing_list_file(tmp_path):
    assert 'ImageSets/2017/val.txt' in load_error(DAVISDataset, str(tmp_path))


def test_missing_video_folder(davis_root):
    with open(os.path.join(davis_root, 'ImageSets', '2017', 'val.txt'), 'a') as file:
        file.write('ghost\n')
    message = load_error(DAVISDataset, davis_root)
    assert os.path.join('JPEGImages', '480p', 'ghost') in message and 'not found' in message


def test_missing_first_annotation(davis_root):
    path = davis_file(davis_root, 'Annotations', 'bear', 0)
    os.remove(path)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and 'frame 0 annotation' in message


def test_empty_first_annotation(davis_root):
    path = davis_file(davis_root, 'Annotations', 'cows', 0)
    write_label_png(path, np.zeros((30, 40), np.uint8))
    message = load_error(DAVISDataset, davis_root)
    assert path in message and 'empty' in message


def test_rgb_first_annotation(davis_root):
    path = davis_file(davis_root, 'Annotations', 'bear', 0)
    Image.open(path).convert('RGB').save(path)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and 'indexed' in message


def test_annotation_missing_in_the_middle(davis_root):
    path = davis_file(davis_root, 'Annotations', 'bear', 2)
    os.remove(path)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and '4 annotations for 5 frames' in message


def test_annotation_without_frame(davis_root):
    os.remove(davis_file(davis_root, 'JPEGImages', 'bear', 4))
    message = load_error(DAVISDataset, davis_root)
    assert davis_file(davis_root, 'Annotations', 'bear', 4) in message and 'without a frame' in message


def test_frame_size_mismatch(davis_root):
    path = davis_file(davis_root, 'JPEGImages', 'bear', 3)
    Image.open(path).resize((40, 36)).save(path)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and '40x36' in message and '48x36' in message


def test_rgb_later_annotation(davis_root):
    path = davis_file(davis_root, 'Annotations', 'cows', 3)
    Image.open(path).convert('RGB').save(path)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and "indexed" in message and "'RGB'" in message


def test_annotation_size_mismatch(davis_root):
    path = davis_file(davis_root, 'Annotations', 'bear', 2)
    ids, palette = read_label_png(path)
    write_label_png(path, ids[:, :40], palette)
    message = load_error(DAVISDataset, davis_root)
    assert path in message and 'annotation is 40x36' in message


def test_corrupt_frame(davis_root):
    path = davis_file(davis_root, 'JPEGImages', 'cows', 2)
    with open(path, 'wb') as file:
        file.write(b'definitely not a jpeg')
    message = load_error(DAVISDataset, davis_root)
    assert path in message and 'not a readable image' in message


def test_all_bad_videos_reported_together(davis_root):
    first = davis_file(davis_root, 'Annotations', 'bear', 0)
    second = davis_file(davis_root, 'JPEGImages', 'cows', 1)
    os.remove(first)
    with open(second, 'wb') as file:
        file.write(b'\x00' * 10)
    message = load_error(DAVISDataset, davis_root)
    assert '2 of 2 videos' in message and first in message and second in message


def test_validation_can_wait_for_the_model(davis_root):
    path = davis_file(davis_root, 'JPEGImages', 'bear', 3)
    Image.open(path).resize((40, 36)).save(path)
    sample = DAVISDataset(davis_root, validate_on_load=False)[0]  # only the structure is checked
    with pytest.raises(VideoDataError, match=path):
        validate_video_sample(sample)


def test_jhmdb_reads_list_mat_and_frames(tmp_path):
    root = str(tmp_path / 'jhmdb')
    truth = make_jhmdb(root, {'run_1': (5, 48, 64), 'run_2': (3, 40, 60)})
    dataset = DATASETS.build(dict(type='JHMDBDataset', data_root=root, ann_file='testlist_split1.txt'))
    assert len(dataset) == 2
    sample = dataset[0]
    assert SAMPLE_KEYS <= set(sample)
    assert sample['video'] == 'run_1' and sample['task'] == 'pose'
    assert sample['frame_paths'][0] == os.path.join(root, 'Rename_Images', 'walk', 'run_1', '00001.png')
    assert len(sample['frame_paths']) == 5 and sample['anno_paths'] == [] and sample['first_anno_path'] is None
    assert sample['ori_shape'] == (48, 64) and sample['input_size'] == (320, 320)
    np.testing.assert_allclose(sample['keypoints'], truth['run_1'])  # 0-based, (T, 15, 2)
    # the .mat file itself is 1-based (2, 15, T)
    mat = scipy.io.loadmat(os.path.join(root, 'joint_positions', 'walk', 'run_1', 'joint_positions.mat'))
    np.testing.assert_allclose(mat['pos_img'][:, :, 2].T - 1, sample['keypoints'][2])


def test_jhmdb_list_in_either_order_and_extra_frames(tmp_path):
    root = str(tmp_path / 'jhmdb')
    truth = make_jhmdb(root, {'clap_1': (4, 40, 50)}, mat_first=False)
    mat_path = os.path.join(root, 'joint_positions', 'walk', 'clap_1', 'joint_positions.mat')
    scipy.io.savemat(mat_path, {'pos_img': truth['clap_1'][:3].transpose(2, 1, 0) + 1})  # 3 of 4 frames
    sample = JHMDBDataset(root, 'testlist_split1.txt', input_size=(256, 256))[0]
    assert len(sample['frame_paths']) == 4 and sample['keypoints'].shape == (3, 15, 2)
    assert sample['input_size'] == (256, 256)


def test_jhmdb_errors_name_the_file(tmp_path):
    root = str(tmp_path / 'jhmdb')
    make_jhmdb(root, {'a': (3, 40, 50), 'b': (3, 40, 50)})
    mat_a = os.path.join(root, 'joint_positions', 'walk', 'a', 'joint_positions.mat')
    mat_b = os.path.join(root, 'joint_positions', 'walk', 'b', 'joint_positions.mat')
    scipy.io.savemat(mat_a, {'pos_img': np.ones((2, 15, 5))})  # more frames than images
    scipy.io.savemat(mat_b, {'joints': np.ones((2, 15, 3))})
    message = load_error(JHMDBDataset, root, 'testlist_split1.txt')
    assert mat_a in message and 'joints for 5 frames' in message
    assert mat_b in message and 'pos_img' in message
    with open(os.path.join(root, 'bad_list.txt'), 'w') as file:
        file.write('Rename_Images/walk/a\n')
    message = load_error(JHMDBDataset, root, 'bad_list.txt')
    assert 'bad_list.txt:1' in message and 'joint_positions.mat' in message


def test_vip_reads_layout_with_sparse_annotations(tmp_path):
    root = str(tmp_path / 'vip')
    truth = make_vip(root, {'videos7': (5, 48, 40, 6)}, annotate_every=2)
    dataset = DATASETS.build(dict(type='VIPDataset', data_root=root))
    sample = dataset[0]
    assert SAMPLE_KEYS <= set(sample)
    assert sample['video'] == 'videos7' and sample['task'] == 'parts' and sample['input_size'] == (560, 560)
    assert sample['ori_shape'] == (48, 40) and len(sample['frame_paths']) == 5
    assert [p is None for p in sample['anno_paths']] == [False, True, False, True, False]
    ids, _ = read_label_png(sample['anno_paths'][2], require_indexed=False)
    np.testing.assert_array_equal(ids, truth['videos7'][2])
    assert sample['first_anno_path'].endswith(os.path.join('Category_ids', 'videos7', '000000000001.png'))


def test_vip_category_ids_out_of_range(tmp_path):
    root = str(tmp_path / 'vip')
    make_vip(root, {'v': (2, 32, 32, 3)})
    path = os.path.join(root, 'VIP_Fine', 'Category_ids', 'v', '000000000001.png')
    ids = np.array(Image.open(path))
    ids[ids == 2] = 40
    Image.fromarray(ids).save(path)
    message = load_error(VIPDataset, root)
    assert path in message and 'category id 40' in message


def test_pose_sample_validation():
    sample = dict(video='x', task='pose', frame_paths=[], anno_paths=[], first_anno_path=None,
                  keypoints=np.zeros((2, 15, 2)), ori_shape=(10, 10), input_size=(320, 320))
    with pytest.raises(VideoDataError, match='no frames'):
        validate_video_sample(sample)
