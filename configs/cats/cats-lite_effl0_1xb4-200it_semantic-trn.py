# Supervised CATs-lite on the semantic pair set's labelled 'trn' pairs: the exact pairs (one photographed
# object composited twice, exact keypoints) and the cross-instance pairs of the hand-annotated training
# categories (hat, shirt, scissors). A target whose object faces the other way is read mirrored
# (unmirror): the matcher learns same-facing matching, facing is the flip mode's job. 200 iterations of
# batch 4 on the CPU, AdamW at 1e-4 after a 30-iteration warm-up (CATs: 3e-5 for the aggregator over far
# longer schedules), weight decay 0.05 as CATs; on the tune split the supervised gain peaked near 100
# iterations and faded by 300. The 100-iteration checkpoint is where SemiMatch starts (configs/semimatch/).
# Evaluate: tools/test.py this config CHECKPOINT (the semantic 'test' split; tune with
# --cfg-options test_dataloader.dataset.split=val).
_base_ = [
    '../_base_/models/pair_cats_effl0.py',
    '../_base_/datasets/semantic_pairs.py',
    '../_base_/pair_runtime.py',
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='sfc_plugin.pair_training_collate'),
    dataset=dict(
        type='PairTrainingDataset',
        dataset=dict(type='SPair71kDataset', data_root={{_base_.data_root}}, split='trn', allow_unlabelled=True),
        size=256,
        crop_prob=0.5,
        unlabelled=False,
        unmirror=True))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=100, max_keep_ckpts=2))
