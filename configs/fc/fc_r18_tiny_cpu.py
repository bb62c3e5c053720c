# A tiny FC run for tests and demos: trains on the CPU in seconds on any folder of images
# (e.g. scikit-image's photos): 64 px crops, batch 4, small heads, 30 iterations.
_base_ = [
    '../_base_/models/fc_r18.py',
    '../_base_/schedules/adam_60k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    projector=dict(hidden_channels=256, out_channels=64),
    predictor=dict(in_channels=64, hidden_channels=256, out_channels=64),
)
data_root = 'data/images'
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageFolderDataset',
        data_root=data_root,
        pipeline=[
            dict(type='LoadRGBImage'),
            dict(type='TwoViewRandomResizedCrop', size=64, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)),
            dict(type='PackTwoViewInputs'),
        ]),
)
train_cfg = dict(max_iters=30)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=2),
)
