# The FC training images that install offline (tools/make_fc_training_data.py writes them and
# train_list.txt, which fixes their order): two independent 128 px random-resized crops of each image
# (PIL's bilinear resize, as the reference), batches of 16 drawn without end (iteration-based runs).
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
