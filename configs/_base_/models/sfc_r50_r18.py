# SFC evaluation model: semantic MoCo ResNet-50 + fine-grained FC ResNet-18, both cut after layer3
# with layer3 at stride 1 (stride 8: 480x854 -> 60x107), fused as
# normalize(cat(lambda * normalize(F_fc), normalize(F_sem))), lambda = 1.75 (DAVIS).
# Weights: tools/test.py CONFIG CHECKPOINT with a checkpoint made by tools/convert_checkpoint.py
# (keys backbone.semantic.* and backbone.fine_grained.*), or per-branch init_cfg, e.g.
#   semantic=dict(..., init_cfg=dict(type='StrictPretrained', checkpoint='moco_r50.pth'))
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='ResNet', depth=50, strides=(1, 2, 1), num_stages=3),
        fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3),
        fine_grained_weight=1.75),
    propagation=dict(topk=15, context_len=20, radius=15, temperature=0.1),
)
