# SFC on JHMDB split 1 (paper Table 0.A.2): lambda 1.0, topk 20, context 8, radius 5, 320x320.
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/jhmdb_split1.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(fine_grained_weight=1.0),
    propagation=dict(topk=20, context_len=8, radius=5),
)
