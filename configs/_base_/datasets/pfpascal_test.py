# PF-PASCAL test split (test_pairs.csv, 299 pairs, 20 classes) in HPF's layout. PCK@alpha by the max
# side of the target image (HPF / SCOT), also by the max side of the target box. Under CATs' protocol
# (model.protocol='cats') the same names mean 256 and the max side of the source box in the 256 x 256 frame.
_base_ = ['./spair71k_test.py']
data_root = 'data/PF-PASCAL'
test_dataloader = dict(dataset=dict(_delete_=True, type='PFPascalDataset', data_root=data_root, split='test'))
test_evaluator = dict(reference=('image', 'bbox'))
