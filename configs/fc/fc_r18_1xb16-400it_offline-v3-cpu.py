# The default model's FC branch, second stage with discriminative learning rates: as
# fc_r18_1xb16-500it_offline-v2-cpu.py (the shipped stem..layer3 continued on 445 real images with a
# fresh layer4, projector and predictor), but the warm-started stem..layer3 (the layers the fused
# model keeps) learn at a tenth of the rate, so that the fresh layers do not drag them away from
# what transferred. docs/default_model.md records the commands and the tune sets' scores.
#   python tools/train.py configs/fc/fc_r18_1xb16-400it_offline-v3-cpu.py --work-dir work_dirs/fc_offline_v3
_base_ = ['./fc_r18_1xb16-500it_offline-v2-cpu.py']
warm_lr_mult = 0.1
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    # online backbone only: the target network has no gradients (EMA of the online one)
    'backbone.conv1': dict(lr_mult=warm_lr_mult),
    'backbone.bn1': dict(lr_mult=warm_lr_mult),
    'backbone.layer1': dict(lr_mult=warm_lr_mult),
    'backbone.layer2': dict(lr_mult=warm_lr_mult),
    'backbone.layer3': dict(lr_mult=warm_lr_mult),
}))
train_cfg = dict(max_iters=400)
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=4))
