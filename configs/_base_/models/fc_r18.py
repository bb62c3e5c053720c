# FC: ResNet-18 from scratch, layer3 and layer4 at stride 1 (stride 8, 512 channels), dense
# projector 512 -> 2048 -> 256 and predictor 256 -> 2048 -> 256, EMA target 0.99 -> 1 (cosine).
model = dict(
    type='FC',
    backbone=dict(type='ResNet', depth=18, strides=(1, 2, 1, 1), num_stages=4, zero_init_residual=True),
    projector=dict(type='DenseMLPHead', in_channels=512, hidden_channels=2048, out_channels=256),
    predictor=dict(type='DenseMLPHead', in_channels=256, hidden_channels=2048, out_channels=256),
    loss=dict(type='FCLoss', radius=0.5),
    base_momentum=0.99,
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        # the FC reference training normalisation (CIFAR statistics), on the 0..255 scale
        mean=[0.4914 * 255, 0.4822 * 255, 0.4465 * 255],
        std=[0.2023 * 255, 0.1994 * 255, 0.2010 * 255]),
)
