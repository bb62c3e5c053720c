# MoCo v1 (He et al. 2020), the image-level term of Xiao et al. (IJCV 2022): ResNet-50 (torchvision's
# initialisation, no zero-initialised residual BN), global average pooling, linear 2048 -> 128,
# InfoNCE at T 0.07 against a queue of K 65536 keys, key encoder momentum 0.999, ImageNet
# normalisation. The key batch is shuffled across processes for BatchNorm (shuffle BN); on one
# process set bn_splits > 1 to emulate it.
model = dict(
    type='MoCo',
    backbone=dict(type='ResNet', depth=50, strides=(1, 2, 2, 2), zero_init_residual=False),
    head=dict(type='PooledProjectionHead', in_channels=2048, out_channels=128),
    loss=dict(type='InfoNCELoss', temperature=0.07),
    queue_len=65536,
    momentum=0.999,
    bn_splits=1,
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
)
