# A tiny CATs-lite run for tests and demos on the CPU: ResNet-18 from scratch at 64 px, hyperpixels of
# layer1-3 on a 4 x 4 grid, aggregator tokens of 16 + 8, batch 2, 6 iterations. Set
# train_dataloader.dataset.dataset.data_root to an SPair-layout folder with a 'trn' split.
_base_ = ['./cats-lite_effl0_1xb4-200it_semantic-trn.py']
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18),
    layers=['layer1', 'layer2', 'layer3'],
    grid=4,
    image_size=64,
    aggregator=dict(projection_dim=8, heads=2, mlp_ratio=2.0),
    label_box=35.0 * 64 / 256,
)
train_dataloader = dict(batch_size=2, dataset=dict(size=64, unlabelled=True))
param_scheduler = []
train_cfg = dict(max_iters=6)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3, max_keep_ckpts=5))
