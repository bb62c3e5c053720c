# YouTube-VOS training frames (train/JPEGImages/<video>/*.jpg, up to 80 frames per video), two
# independent 256 px random-resized crops of each frame, no colour augmentation.
data_root = 'data/youtube_vos/train'
train_pipeline = [
    dict(type='LoadRGBImage'),
    dict(type='TwoViewRandomResizedCrop', size=256, scale=(0.0, 1.0), ratio=(3 / 4, 4 / 3),
         backend='pillow'),  # PIL's bilinear resize, as torchvision's in the reference
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(
    batch_size=96,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VideoFramesDataset', data_root=data_root, frames_per_video=80,
                 pipeline=train_pipeline),
)
