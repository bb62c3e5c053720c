# CATs-lite on EfficientNet-Lite0 (its ImageNet weights, frozen): hyperpixels of blocks 10 (stride 16 at
# 256 px) and 12 (stride 32, resized to the grid), the layers the semantic pair model matches with; CATs'
# 16 x 16 grid and depth-1 aggregator, made smaller for the CPU (CATs: 7-8 layers, 128-d projections, 6 heads,
# MLP ratio 4): 64-d feature projections, tokens of 256 + 64, 4 heads, MLP ratio 2.
# Chosen on the tune split (docs/pair_training.md): CATs' soft-argmax beta 0.02 (the untrained network
# scores 27.7 mean PCK@0.1 over the tune categories at 0.02, 19.2 at 0.05, 4.3 at SemiMatch's 0.1); no
# position embedding; a point matched by the refined correlation rows interpolated at its position and
# read out with SFNet's kernel soft-argmax (sigma 5 cells; 35.7 untrained against 29.0 for CATs' flow
# readout; training uses the plain soft-argmax flow, as CATs). Evaluation runs it as any pair model
# (tools/test.py, sfc-match --config).
model = dict(
    type='CATsMatchingModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(type='EfficientNetLite', arch='lite0', out_block=12, pretrained=True),
        fine_grained=None,
        semantic_mean=(0.5, 0.5, 0.5),
        semantic_std=(0.5, 0.5, 0.5)),
    layers=['semantic._blocks.10', 'semantic._blocks.12'],
    grid=16,
    image_size=256,
    aggregator=dict(projection_dim=64, depth=1, heads=4, mlp_ratio=2.0, position_embedding=False),
    softmax_temperature=0.02,
    kernel_sigma=5.0,
    readout='row',
    label_box=35.0,
)
