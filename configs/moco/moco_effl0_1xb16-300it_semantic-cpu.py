# Experiment (docs/semantic_training.md, "MoCo vs MoCo + cycle"): MoCo v2 fine-tuning of the ImageNet
# EfficientNet-Lite0 on the CPU, the image-level term alone. 128 px views, batch 16 in two BatchNorm
# groups, every BatchNorm in eval mode (norm_eval: small batches would move the ImageNet statistics), a
# queue of 256 keys, SGD 0.003 (Xiao et al.'s fine-tuning rate) with a cosine decay over 300 iterations.
# Images: a list file (data_root/ann_file); the run in the docs lists the unlabelled 'trn' images of
# the semantic pair set (never a report-split instance) and the offline photos and frames of
# tools/make_fc_training_data.py.
_base_ = ['./moco_effl0_tiny_cpu.py']
model = dict(backbone=dict(norm_eval=True), queue_len=256)
data_root = 'data'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageListDataset',
        ann_file='moco_list.txt',
        data_root=data_root,
        pipeline=[
            dict(type='LoadRGBImage'),
            dict(type='TwoViewRandomResizedCrop', size=128, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                 flip_prob=0.5, backend='pillow'),
            dict(type='ViewsColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
            dict(type='ViewsRandomGrayscale', prob=0.2),
            dict(type='ViewsGaussianBlur', sigma=(0.06, 1.14), prob=0.5),
            dict(type='PackTwoViewInputs'),
        ]))
optim_wrapper = dict(optimizer=dict(lr=0.003))
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=3))
