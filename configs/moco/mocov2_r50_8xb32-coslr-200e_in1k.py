# MoCo v2 ResNet-50, the published recipe: 8 processes x 32 images (batch 256), SGD lr 0.03, cosine,
# 200 epochs on ImageNet train (set data_root), from a random initialisation.
#   bash tools/dist_train.sh configs/moco/mocov2_r50_8xb32-coslr-200e_in1k.py 8 \
#       --cfg-options train_dataloader.dataset.data_root=/path/to/imagenet/train
_base_ = [
    '../_base_/models/moco_v2_r50.py',
    '../_base_/datasets/moco_v2_imagenet.py',
    '../_base_/schedules/sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=10, max_keep_ckpts=3))
log_processor = dict(by_epoch=True)
