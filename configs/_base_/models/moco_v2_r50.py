# MoCo v2 (Chen et al. 2020): MoCo v1 with an MLP head (2048 -> 2048 -> ReLU -> 128) and T 0.2.
_base_ = ['./moco_v1_r50.py']
model = dict(
    head=dict(hidden_channels=2048),
    loss=dict(temperature=0.2),
)
