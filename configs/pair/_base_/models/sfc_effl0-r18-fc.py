# The default fused model (sfc_plugin/assets/default_model.py: EfficientNet-Lite0 + the project's FC
# ResNet-18, lambda 1.75) as a pair-matching model: images resized to a 320-pixel longer side, nearest
# neighbour (other matchers: model.matcher.method=mutual_nn | soft_argmax | ot_rhm).
_base_ = ['../../../../sfc_plugin/assets/default_model.py']
model = dict(
    _delete_=True,
    type='PairMatchingModel',
    backbone={{_base_.model.backbone}},
    matcher=dict(method='nn'),
    max_side=320,
)
