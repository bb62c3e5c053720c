# PF-WILLOW (test_pairs.csv, 900 pairs, 10 keypoints each) in HPF's layout. PCK@alpha by the max side of
# the tight box of the target keypoints (under CATs' protocol, model.protocol='cats': of the source
# keypoints, in the 256 x 256 frame).
_base_ = ['./spair71k_test.py']
data_root = 'data/PF-WILLOW'
test_dataloader = dict(dataset=dict(_delete_=True, type='PFWillowDataset', data_root=data_root, split='test'))
test_evaluator = dict(reference='kps_bbox')
