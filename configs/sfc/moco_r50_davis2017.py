# The semantic branch alone (MoCo ResNet-50) on DAVIS-2017 val. The published MoCo-alone 66.8 J&F
# (paper Table A.1, official README) was measured with top-k 10, radius 12, temperature 0.05 (the
# FC-alone settings), not with the fused model's top-k 15, radius 15, temperature 0.1.
_base_ = [
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='ResNet', depth=50, strides=(1, 2, 1), num_stages=3)),
    propagator=dict(topk=10, context_len=20, radius=12, temperature=0.05),
)
