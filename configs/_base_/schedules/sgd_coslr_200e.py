# MoCo v2 recipe: SGD lr 0.03 for batch 256 (lr = 0.03 * batch / 256), momentum 0.9, weight decay
# 1e-4, cosine decay per epoch over 200 epochs (configs using it checkpoint and log by epoch).
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
auto_scale_lr = dict(base_batch_size=256, enable=False)
