# The semantic branch alone (MoCo ResNet-50) on DAVIS-2017 val, with the SFC propagation settings
# (the paper reports 66.8 J&F for MoCo alone without stating its settings).
_base_ = [
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='ResNet', depth=50, strides=(1, 2, 1), num_stages=3)),
    propagator=dict(topk=15, context_len=20, radius=15, temperature=0.1),
)
