# The semi-supervised setting's supervised baseline: cats-lite_effl0_1xb4-200it_semantic-trn.py with a seeded
# quarter of the labelled 'trn' pairs keeping their keypoints (SemiMatch's sparse setting); the others are
# left out. SemiMatch with the same quarter: configs/semimatch/semimatch_cats-lite_effl0_1xb4-100it_semantic-trn-label25.py.
_base_ = ['./cats-lite_effl0_1xb4-200it_semantic-trn.py']
train_dataloader = dict(dataset=dict(labelled_fraction=0.25))
