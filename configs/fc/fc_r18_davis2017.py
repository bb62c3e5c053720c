# FC ResNet-18 alone on DAVIS-2017 val: topk 10, context 20, radius 12, temperature 0.05 (J&F 67.98).
_base_ = [
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
    propagator=dict(topk=10, context_len=20, radius=12, temperature=0.05),
)
