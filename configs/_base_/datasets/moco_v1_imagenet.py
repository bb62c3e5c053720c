# MoCo v1 views of ImageNet train images (data_root: any image folder, scanned recursively):
# two independent views, each RandomResizedCrop(224, scale 0.2-1) with PIL's bilinear resize,
# horizontal flip (p 0.5), grayscale (p 0.2), ColorJitter(0.4, 0.4, 0.4, 0.4).
# 32 images per process (8 processes: batch 256), incomplete last batches dropped (the queue
# takes a fixed number of keys per step).
data_root = 'data/imagenet/train'
train_pipeline = [
    dict(type='LoadRGBImage'),
    dict(type='TwoViewRandomResizedCrop', size=224, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
         flip_prob=0.5, backend='pillow'),
    dict(type='ViewsRandomGrayscale', prob=0.2),
    dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.4, prob=1.0),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, pipeline=train_pipeline),
)
