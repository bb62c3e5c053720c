# SFC's published layout: MoCo ResNet-50 + FC ResNet-18, both cut after layer3 at stride 8, lambda 1.75.
# Weights: tools/test.py CONFIG sfc.pth with the checkpoint tools/convert_checkpoint.py writes
# (keys backbone.semantic.* and backbone.fine_grained.*; README "Evaluate label propagation").
_base_ = ['../../../_base_/models/sfc_r50_r18.py']
model = dict(
    _delete_=True,
    type='PairMatchingModel',
    backbone={{_base_.model.backbone}},
    matcher=dict(method='nn'),
    max_side=320,
)
