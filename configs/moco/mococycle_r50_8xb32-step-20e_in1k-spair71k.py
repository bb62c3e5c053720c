# Xiao et al. (IJCV 2022), the published setting: MoCo v1 ResNet-50 plus the cross-instance cycle term.
# ImageNet views (MoCo v1 augmentation) are zipped with unlabelled same-category pairs of SPair-71k's
# test list (images only, as the reference trains: a transductive setting); the shorter set is
# re-indexed by seeded permutations. Cycle: walk on layer3 (the reference's bottleneck 13: stride 16,
# 1024 channels, 14 x 14 cells at 224 px), attention from layer4, 224 px pairs, 128 px crops
# (8 x 8 cells), rotation U(-10, 10) degrees, flip p 0.5, tau 0.0007, weight 5e-4 (PF-PASCAL and
# SPair-71k; the reference uses 5e-5 for PF-WILLOW). SGD lr 0.003, momentum 0.9, weight decay 1e-4,
# x0.1 at epochs 5, 10 and 15, 20 epochs, 8 processes x 32 images.
# Start: MoCo v1's ImageNet backbone (the projection head starts fresh; the reference also restores it):
#   python tools/convert_checkpoint.py moco_v1_200ep_pretrain.pth.tar checkpoints/moco_v1_r50.pth --layout moco
#   bash tools/dist_train.sh configs/moco/mococycle_r50_8xb32-step-20e_in1k-spair71k.py 8 \
#       --cfg-options train_dataloader.dataset.dataset.data_root=/path/to/imagenet/train \
#                     train_dataloader.dataset.pairs_root=/path/to/SPair-71k
_base_ = [
    '../_base_/models/moco_v1_r50.py',
    '../_base_/datasets/moco_v1_imagenet.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(init_cfg=dict(type='StrictPretrained', checkpoint='checkpoints/moco_v1_r50.pth')),
    cycle=dict(
        type='CrossInstanceCycle',
        walk_layer='layer3',
        attention_layer='layer4',
        crop_size=128,
        rotation=10.0,
        flip_prob=0.5,
        temperature=0.0007,
        loss_weight=5e-4,
        label='centre'),
)
pairs_root = 'data/SPair-71k'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CyclePairDataset',
        dataset={{_base_.train_dataloader.dataset}},
        pairs_root=pairs_root,
        split='test',
        pair_size=224,
        seed=0))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[5, 10, 15], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=True)
