# A ResNet-18 trained by MoCo (configs/moco/moco_r18_tiny_cpu.py or mococycle_r18_tiny_cpu.py) as a
# pair-matching model: the query encoder's backbone as the semantic branch (ImageNet normalisation, as
# MoCo trains it), hyperpixels of layer2..layer4 at a 320-pixel longer side, nearest neighbour. Set the
# checkpoint with --cfg-options model.backbone.semantic.init_cfg.checkpoint=work_dirs/moco/iter_300.pth;
# model.backbone.semantic.init_cfg=None gives the untrained, randomly initialised network.
model = dict(
    type='PairMatchingModel',
    backbone=dict(
        type='SFCBackbone',
        semantic=dict(
            type='ResNet', depth=18, num_stages=4,
            init_cfg=dict(type='StrictPretrained', checkpoint='work_dirs/moco/iter_300.pth', prefix='backbone.')),
        fine_grained=None),
    layers=['semantic.layer2', 'semantic.layer3', 'semantic.layer4'],
    max_side=320,
    matcher=dict(method='nn'),
)
