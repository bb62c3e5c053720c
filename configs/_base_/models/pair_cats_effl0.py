# CATs-lite on EfficientNet-Lite0 (its ImageNet weights, frozen): hyperpixels of blocks 7 and 10
# (stride 16 at 256 px) and 12 and 14 (stride 32, resized to the 16 x 16 grid), CATs' aggregator at
# depth 1 (6 heads, 128-d feature projections, tokens of 256 + 128), soft-argmax flow at beta 0.1.
# Evaluation runs it as any pair model (tools/test.py with an evaluation dataset, sfc-match --config).
model = dict(
    type='CATsMatchingModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite', arch='lite0', out_block=14, pretrained=True),
        fine_grained=None,
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    layers=['semantic._blocks.7', 'semantic._blocks.10', 'semantic._blocks.12', 'semantic._blocks.14'],
    grid=16,
    image_size=256,
    aggregator=dict(projection_dim=128, depth=1, heads=6, mlp_ratio=4.0),
    softmax_temperature=0.1,
    label_box=35.0,
)
