"""SPair-71k, PF-PASCAL and PF-WILLOW loaders on tiny fixtures in each exact published format."""
import json
import os

import numpy as np
import pytest
import scipy.io

from pair_fixtures import make_pfpascal, make_pfwillow, make_spair, spair_record
from sfc_plugin.correspondence import PairDataError, PFPascalDataset, PFWillowDataset, SPair71kDataset


def _spair(root, **overrides):
    record = spair_record('2008_000001', '2008_000002', 'cat', [[3.0, 4.0], [10.5, 20.0]], [[5.0, 6.0], [30.0, 7.0]],
                          [1, 2, 41, 32], [0, 0, 20, 35], flags=(2, 1, 3, 0))
    record.update(overrides)
    return make_spair(str(root), [record])


def test_spair_fields_coordinates_and_difficulty(tmp_path):
    lines = _spair(tmp_path)
    dataset = SPair71kDataset(str(tmp_path), split='test')
    sample = dataset[0]
    assert sample['pair_id'] == lines[0] == '000001-2008_000001-2008_000002:cat'
    assert sample['category'] == 'cat'
    assert sample['src_path'] == os.path.join(str(tmp_path), 'JPEGImages', 'cat', '2008_000001.jpg')
    np.testing.assert_array_equal(sample['src_kps'], [[3.0, 4.0], [10.5, 20.0]])  # 0-based, as stored
    np.testing.assert_array_equal(sample['trg_kps'], [[5.0, 6.0], [30.0, 7.0]])
    np.testing.assert_array_equal(sample['trg_bbox'], [0, 0, 20, 35])
    assert sample['valid'].tolist() == [True, True]
    assert sample['pck_sizes']['bbox'] == 35  # max(x2 - x1, y2 - y1) of the target box
    assert sample['difficulty'] == dict(viewpoint_variation=2, scale_variation=1, truncation=3, occlusion=0)
    assert sample['coordinate_origin'] == 0


def test_pfpascal_one_based_mat_and_invisible_keypoints(tmp_path):
    kps_a = [[11, 21], [np.nan, np.nan], [31, 41]]
    kps_b = [[5, 6], [7, 8], [np.nan, np.nan]]
    make_pfpascal(str(tmp_path), [('2009_000001', '2009_000002', 8)],
                  {'2009_000001': ('cat', kps_a, [1, 1, 40, 30]), '2009_000002': ('cat', kps_b, [3, 4, 23, 44])})
    sample = PFPascalDataset(str(tmp_path), split='test')[0]
    assert sample['category'] == 'cat'  # class 8 of the 1-based list
    np.testing.assert_array_equal(sample['src_kps'][0], [10, 20])  # 1-based -> 0-based
    np.testing.assert_array_equal(sample['trg_bbox'], [2, 3, 22, 43])
    assert sample['valid'].tolist() == [True, False, False]
    assert sample['pck_sizes']['bbox'] == 40
    assert sample['coordinate_origin'] == 1
    assert sample['trg_path'].endswith(os.path.join('JPEGImages', '2009_000002.jpg'))


def test_pfpascal_trn_split_has_the_flip_column(tmp_path):
    make_pfpascal(str(tmp_path), [('a', 'b', 1)], {'a': ('aeroplane', [[1, 1]], [1, 1, 5, 5]),
                                                   'b': ('aeroplane', [[2, 2]], [1, 1, 9, 5])}, split='trn')
    sample = PFPascalDataset(str(tmp_path), split='trn')[0]
    assert sample['category'] == 'aeroplane' and 'flip' not in sample


def test_pfpascal_flip_mirrors_keypoints_boxes_and_images(tmp_path):
    kps_a, kps_b = [[11, 21], [np.nan, np.nan], [64, 48]], [[1, 6], [7, 8], [30, 2]]
    make_pfpascal(str(tmp_path), [('a', 'b', 8, 0), ('a', 'b', 8, 1)],
                  {'a': ('cat', kps_a, [1, 2, 40, 30]), 'b': ('cat', kps_b, [3, 4, 23, 44])}, split='trn')
    plain, flipped = PFPascalDataset(str(tmp_path), split='trn')  # the fixture's images are 64 x 48
    assert plain['pair_id'] == 'a-b' and flipped['pair_id'] == 'a-b-flip' and flipped['flip'] is True
    # 0-based x -> 63 - x: 1-based (11, 21) is 0-based (10, 20) -> (53, 20); the last column 63 -> 0.
    np.testing.assert_array_equal(flipped['src_kps'], [[53, 20], [np.nan, np.nan], [0, 47]])
    np.testing.assert_array_equal(flipped['trg_kps'], [[63, 5], [57, 7], [34, 1]])
    np.testing.assert_array_equal(flipped['src_bbox'], [63 - 39, 1, 63, 29])
    np.testing.assert_array_equal(flipped['trg_bbox'], [63 - 22, 3, 63 - 2, 43])
    assert flipped['pck_sizes'] == plain['pck_sizes'] and flipped['valid'].tolist() == plain['valid'].tolist()
    with open(os.path.join(str(tmp_path), 'trn_pairs.csv'), 'a') as file:
        file.write('PF/a.jpg,PF/b.jpg,8,2\n')
    with pytest.raises(PairDataError, match=r'trn_pairs.csv:4: flip must be 0 or 1'):
        PFPascalDataset(str(tmp_path), split='trn')


def test_pfwillow_pair_ids_are_unique_across_categories(tmp_path):
    kps = np.ones((10, 2))
    make_pfwillow(str(tmp_path), [('PF-dataset/car(G)/Cars_000a.png', 'PF-dataset/car(G)/Cars_001a.png', kps, kps),
                                  ('PF-dataset/car(M)/Cars_000a.png', 'PF-dataset/car(M)/Cars_001a.png', kps, kps),
                                  ('PF-dataset/car(M)/Cars_000a.png', 'PF-dataset/car(M)/Cars_001a.png', kps, kps)])
    ids = [sample['pair_id'] for sample in PFWillowDataset(str(tmp_path))]
    assert ids == ['car(G)-Cars_000a-Cars_001a', 'car(M)-Cars_000a-Cars_001a', 'car(M)-Cars_000a-Cars_001a-4']


def test_spair_passes_the_optional_mirrored_field(tmp_path):
    _spair(tmp_path)
    assert 'mirrored' not in SPair71kDataset(str(tmp_path))[0]
    _spair(tmp_path / 'unknown', mirrored=None)
    assert 'mirrored' not in SPair71kDataset(str(tmp_path / 'unknown'))[0]
    _spair(tmp_path / 'm', mirrored=1)
    assert SPair71kDataset(str(tmp_path / 'm'))[0]['mirrored'] is True
    lines = _spair(tmp_path / 'bad', mirrored='yes')
    with pytest.raises(PairDataError, match='mirrored must be 0 or 1') as error:
        SPair71kDataset(str(tmp_path / 'bad'))
    assert f'{lines[0]}.json' in str(error.value)


def test_spair_unlabelled_pairs_load_only_when_allowed(tmp_path):
    lines = _spair(tmp_path, src_kps=[], trg_kps=[])
    with pytest.raises(PairDataError, match='no keypoints.*allow_unlabelled=True') as error:
        SPair71kDataset(str(tmp_path))
    assert f'{lines[0]}.json' in str(error.value)
    sample = SPair71kDataset(str(tmp_path), allow_unlabelled=True)[0]
    assert sample['labelled'] is False and sample['valid'].shape == (0,)
    assert sample['src_kps'].shape == sample['trg_kps'].shape == (0, 2)
    np.testing.assert_array_equal(sample['trg_bbox'], [0, 0, 20, 35])  # the rest is read as for any pair
    assert sample['pck_sizes']['bbox'] == 35 and sample['difficulty']['viewpoint_variation'] == 2
    _spair(tmp_path / 'labelled')
    assert SPair71kDataset(str(tmp_path / 'labelled'), allow_unlabelled=True)[0]['labelled'] is True
    assert 'labelled' not in SPair71kDataset(str(tmp_path / 'labelled'))[0]  # evaluation samples as before
    _spair(tmp_path / 'uneven', trg_kps=[])
    with pytest.raises(PairDataError, match='same number'):
        SPair71kDataset(str(tmp_path / 'uneven'), allow_unlabelled=True)


def test_pfwillow_column_order(tmp_path):
    kps_a = np.stack([np.arange(1, 11), np.arange(101, 111)], axis=1)  # x 1..10, y 101..110 (1-based)
    kps_b = np.stack([np.arange(21, 31), np.arange(51, 61) * 0 + 40], axis=1)
    make_pfwillow(str(tmp_path), [('PF-dataset/car(G)/Cars_000a.png', 'PF-dataset/car(G)/Cars_001a.png', kps_a, kps_b)])
    sample = PFWillowDataset(str(tmp_path))[0]
    assert sample['category'] == 'car(G)'
    assert sample['src_path'] == os.path.join(str(tmp_path), 'car(G)', 'Cars_000a.png')
    np.testing.assert_array_equal(sample['src_kps'], kps_a - 1)
    np.testing.assert_array_equal(sample['trg_kps'], kps_b - 1)
    assert sample['pck_sizes']['kps_bbox'] == 9  # x spans 20..29 (0-based), y constant


def test_missing_root_names_root_and_layout(tmp_path):
    for dataset_type, expected in ((SPair71kDataset, 'PairAnnotation'), (PFPascalDataset, '_pairs.csv'),
                                   (PFWillowDataset, 'test_pairs.csv')):
        with pytest.raises(PairDataError) as error:
            dataset_type(str(tmp_path / 'nowhere'))
        assert str(tmp_path / 'nowhere') in str(error.value) and expected in str(error.value)
        assert 'Expected layout' in str(error.value)


@pytest.mark.parametrize('override, message', [
    (dict(src_kps=[[1.0, 2.0]]), 'same number'),
    (dict(trg_bndbox=[5, 5, 1, 1]), 'trg_bndbox'),
    (dict(truncation=7), 'truncation'),
    (dict(src_kps='oops'), 'src_kps'),
])
def test_spair_malformed_pair_file_names_itself(tmp_path, override, message):
    lines = _spair(tmp_path, **override)
    with pytest.raises(PairDataError) as error:
        SPair71kDataset(str(tmp_path))
    assert f'{lines[0]}.json' in str(error.value) and message in str(error.value)


def test_spair_missing_field_and_bad_json_name_the_file(tmp_path):
    lines = _spair(tmp_path)
    path = os.path.join(str(tmp_path), 'PairAnnotation', 'test', f'{lines[0]}.json')
    record = json.load(open(path))
    del record['occlusion']
    json.dump(record, open(path, 'w'))
    with pytest.raises(PairDataError, match='occlusion') as error:
        SPair71kDataset(str(tmp_path))
    assert path in str(error.value)
    open(path, 'w').write('{not json')
    with pytest.raises(PairDataError, match='cannot read it as JSON') as error:
        SPair71kDataset(str(tmp_path))
    assert path in str(error.value)


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    _spair(tmp_path)
    image = os.path.join(str(tmp_path), 'JPEGImages', 'cat', '2008_000002.jpg')
    open(image, 'wb').write(b'not a jpeg')
    with pytest.raises(PairDataError, match='not a readable image') as error:
        SPair71kDataset(str(tmp_path))
    assert image in str(error.value)
    os.remove(image)
    with pytest.raises(PairDataError, match='no such image file'):
        SPair71kDataset(str(tmp_path))


def test_pfpascal_malformed_files(tmp_path):
    make_pfpascal(str(tmp_path), [('a', 'b', 8)],
                  {'a': ('cat', [[1, 1]], [1, 1, 5, 5]), 'b': ('cat', [[2, 2]], [1, 1, 9, 5])})
    mat = os.path.join(str(tmp_path), 'Annotations', 'cat', 'b.mat')
    scipy.io.savemat(mat, {'bbox': np.array([[1.0, 1, 9, 5]])})
    with pytest.raises(PairDataError, match="no 'kps'") as error:
        PFPascalDataset(str(tmp_path))
    assert mat in str(error.value)
    with open(os.path.join(str(tmp_path), 'test_pairs.csv'), 'a') as file:
        file.write('PF/x.jpg,PF/y.jpg,25\n')
    with pytest.raises(PairDataError, match=r'test_pairs.csv:3: class must be an integer 1..20'):
        PFPascalDataset(str(tmp_path))


def test_pfwillow_wrong_columns_name_the_line(tmp_path):
    kps = np.ones((10, 2))
    make_pfwillow(str(tmp_path), [('PF-dataset/duck(S)/a.png', 'PF-dataset/duck(S)/b.png', kps, kps)])
    with open(os.path.join(str(tmp_path), 'test_pairs.csv'), 'a') as file:
        file.write('PF-dataset/duck(S)/a.png,PF-dataset/duck(S)/b.png,1,2,3\n')
    with pytest.raises(PairDataError, match=r'test_pairs.csv:3: expected 42 columns'):
        PFWillowDataset(str(tmp_path))
