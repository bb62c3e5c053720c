# MoCo v2 views of ImageNet train images: each view RandomResizedCrop(224, scale 0.2-1), horizontal
# flip (p 0.5), ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale (p 0.2), Gaussian blur
# (sigma 0.1-2.0 px) with p 0.5. Batch 32 per process as MoCo v1's.
_base_ = ['./moco_v1_imagenet.py']
train_pipeline = [
    dict(type='LoadRGBImage'),
    dict(type='TwoViewRandomResizedCrop', size=224, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
         flip_prob=0.5, backend='pillow'),
    dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
    dict(type='ViewsRandomGrayscale', prob=0.2),
    dict(type='ViewsGaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
