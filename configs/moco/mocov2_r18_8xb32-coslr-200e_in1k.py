# MoCo v2 with a ResNet-18 (512 channels: MLP head 512 -> 512 -> 128), otherwise the ResNet-50 recipe.
_base_ = ['./mocov2_r50_8xb32-coslr-200e_in1k.py']
model = dict(
    backbone=dict(depth=18),
    head=dict(in_channels=512, hidden_channels=512),
)
