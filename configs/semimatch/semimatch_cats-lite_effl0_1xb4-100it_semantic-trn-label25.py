# SemiMatch in the semi-supervised setting: the same quarter of labelled pairs as
# configs/cats/cats-lite_effl0_1xb4-200it_semantic-trn-label25.py, from its 100-iteration checkpoint, 100 more;
# every other 'trn' pair (labels taken away, or never labelled) trains the pseudo-label loss only.
_base_ = ['./semimatch_cats-lite_effl0_1xb4-100it_semantic-trn.py']
train_dataloader = dict(dataset=dict(labelled_fraction=0.25))
load_from = 'work_dirs/cats-lite_effl0_1xb4-200it_semantic-trn-label25/iter_100.pth'
