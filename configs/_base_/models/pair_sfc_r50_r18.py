# SFC's published layout as a pair-matching model: MoCo ResNet-50 + FC ResNet-18, both cut after
# layer3 at stride 8, lambda 1.75; images resized to a 320-pixel longer side, nearest neighbour (other
# methods and options: see pair_sfc_effl0_r18.py).
# Weights: tools/test.py CONFIG sfc.pth with the checkpoint tools/convert_checkpoint.py writes
# (keys backbone.semantic.* and backbone.fine_grained.*; docs/method.md section 4).
_base_ = ['./sfc_r50_r18.py']
model = dict(
    _delete_=True,
    type='PairMatchingModel',
    backbone={{_base_.model.backbone}},
    matcher=dict(method='nn'),
    max_side=320,
)
