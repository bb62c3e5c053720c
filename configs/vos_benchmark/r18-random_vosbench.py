# Baseline: a randomly initialised ResNet-18 cut after layer3 (stride 8), with the SFC propagation
# settings (topk 15, context 20, radius 15, temperature 0.1).
_base_ = ['../_base_/datasets/vos_benchmark.py', '../_base_/default_runtime.py']
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        fine_grained=dict(type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
    propagator=dict(topk=15, context_len=20, radius=15, temperature=0.1),
)
