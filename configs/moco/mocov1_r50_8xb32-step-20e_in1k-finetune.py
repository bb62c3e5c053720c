# The image-level term of Xiao et al. (IJCV 2022) on its own: MoCo v1 fine-tuning of the published
# MoCo v1 ResNet-50 (moco_v1_200ep_pretrain.pth.tar: the query encoder and its fc 2048 -> 128 are
# restored; the key encoder starts as their copy and the queue at random), MoCo v1 views of ImageNet,
# T 0.07, K 65536, m 0.999, SGD lr 0.003 (momentum 0.9, weight decay 1e-4), x0.1 at epochs 5, 10
# and 15, 20 epochs, 8 processes x 32 images, a checkpoint every 5000 iterations. Add the
# cross-instance cycle term with model.cycle (CrossInstanceCycle) and pair_images in the samples.
_base_ = [
    '../_base_/models/moco_v1_r50.py',
    '../_base_/datasets/moco_v1_imagenet.py',
    '../_base_/default_runtime.py',
]
published = 'checkpoints/moco_v1_200ep_pretrain.pth.tar'
model = dict(
    backbone=dict(init_cfg=dict(type='StrictPretrained', checkpoint=published, prefix='module.encoder_q.')),
    head=dict(init_cfg=dict(type='StrictPretrained', checkpoint=published, prefix='module.encoder_q.',
                            ignore_unexpected=('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.'))),
)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[5, 10, 15], gamma=0.1, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
auto_scale_lr = dict(base_batch_size=256, enable=False)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=True)
