# The semantic branch alone (MoCo ResNet-50) on DAVIS-2017 val. The published MoCo-alone 66.8 J&F
# (paper Table A.1, official README) was measured with top-k 10, radius 12, temperature 0.05 (the
# FC-alone settings), not with the fused model's top-k 15, radius 15, temperature 0.1.
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(_delete_=True, type='SFCBackbone', semantic={{_base_.model.backbone.semantic}}),
    propagation=dict(topk=10, radius=12, temperature=0.05),
)
