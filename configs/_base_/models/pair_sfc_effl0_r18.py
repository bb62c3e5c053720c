# The default fused model (EfficientNet-Lite0 + the project's FC ResNet-18, lambda 0.75) as a
# pair-matching model: images resized to a 320-pixel longer side, nearest neighbour (other methods:
# model.matcher.method=mutual_nn | soft_argmax | kernel_soft_argmax | ot_rhm | box_prior; model.flip=auto
# for flip-aware matching; model.protocol=cats with model.max_side=None for CATs' PCK protocol).
_base_ = ['./sfc_effl0_r18.py']
model = dict(
    _delete_=True,
    type='PairMatchingModel',
    backbone={{_base_.model.backbone}},
    matcher=dict(method='nn'),
    max_side=320,
)
