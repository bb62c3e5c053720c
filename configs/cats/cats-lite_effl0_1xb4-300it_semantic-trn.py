# Supervised CATs-lite on the semantic pair set's 'trn' split: its exact pairs (one photographed object
# composited twice, keypoints exact) supervise; its cross-instance pairs have no keypoints and add nothing
# here (SemiMatch trains on them: configs/semimatch/). 400 iterations of batch 4 on the CPU, AdamW at
# 1e-4 (CATs: 3e-5 for the aggregator over much longer schedules), weight decay 0.05 as CATs.
# Evaluate: tools/test.py this config the checkpoint (the semantic 'test' split, or
# --cfg-options test_dataloader.dataset.split=val to tune).
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
        crop_prob=0.5))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100, max_keep_ckpts=4))
