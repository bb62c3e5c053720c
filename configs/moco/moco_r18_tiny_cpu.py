# A tiny MoCo v2 run for tests and demos on the CPU, on any folder of images (e.g. scikit-image's
# photos or tools/make_fc_training_data.py's output): ResNet-18 from scratch, 64 px views, batch 8,
# a queue of 64 keys (a multiple of 8 keys per process and of 16 for two processes), shuffle BN
# emulated with 2 BatchNorm groups of 4, 300 iterations of SGD with a cosine decay. The Gaussian
# blur's sigma is MoCo v2's 0.1-2.0 px scaled from 224 px to 64 px views.
_base_ = [
    '../_base_/models/moco_v2_r50.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18),
    head=dict(in_channels=512, hidden_channels=512),
    queue_len=64,
    bn_splits=2,
)
data_root = 'data/images'
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageFolderDataset',
        data_root=data_root,
        pipeline=[
            dict(type='LoadRGBImage'),
            dict(type='TwoViewRandomResizedCrop', size=64, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                 flip_prob=0.5, backend='pillow'),
            dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
            dict(type='ViewsRandomGrayscale', prob=0.2),
            dict(type='ViewsGaussianBlur', sigma=(0.03, 0.57), prob=0.5),
            dict(type='PackTwoViewInputs'),
        ]),
)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=300, by_epoch=False, begin=0, end=300)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=2),
)
