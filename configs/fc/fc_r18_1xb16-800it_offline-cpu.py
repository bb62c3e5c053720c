# The default FC model of sfc_plugin, trained on this project's CPU machine on real images that
# install offline (scikit-image photos + bikes.mp4 frames 0-124; the VOS benchmark uses other shots):
#   python tools/make_fc_training_data.py --out data/fc_offline
#   python tools/train.py configs/fc/fc_r18_1xb16-800it_offline-cpu.py --work-dir work_dirs/fc_offline
# The paper's recipe with the size cut to what 2 CPU cores train in about 1.5 hours: 128 px crops
# (16x16 feature maps), batch 16, 800 iterations. Everything else as the paper (r = 0.5, Adam 1e-3).
_base_ = [
    '../_base_/models/fc_r18.py',
    '../_base_/schedules/adam_60k.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/fc_offline'
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageListDataset',
        data_root=data_root,
        ann_file='train_list.txt',
        pipeline=[
            dict(type='LoadRGBImage'),
            dict(type='TwoViewRandomResizedCrop', size=128, scale=(0.0, 1.0), ratio=(3 / 4, 4 / 3),
                 backend='pillow'),
            dict(type='PackTwoViewInputs'),
        ]),
)
train_cfg = dict(max_iters=800)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=3),
)
