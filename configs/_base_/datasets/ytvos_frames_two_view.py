# YouTube-VOS training frames (train/JPEGImages/<video>/*.jpg), two independent 256 px
# random-resized crops of each frame, no colour augmentation. As the reference training, every
# epoch draws up to 80 random frames of each video anew (RandomFramesPerVideoSampler).
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
    sampler=dict(type='RandomFramesPerVideoSampler', frames_per_video=80),
    dataset=dict(type='VideoFramesDataset', data_root=data_root, frames_per_video=None,
                 pipeline=train_pipeline),
)
