# SFC on VIP: lambda 1.0, topk 10, context 8, radius 15, frames resized to 560x560.
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/vip_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(fine_grained_weight=1.0),
    propagation=dict(topk=10, context_len=8, radius=15),
)
