# Experiment, not shipped (docs/default_model.md, "A second FC stage on 3x more real images: v2"): the
# shipped second stage (fc_r18_1xb16-300it_offline-v4-cpu.py: its data and first-stage checkpoint) without
# its two protections of the warm-started layers: every layer at the full rate and the BatchNorm
# statistics trained on the new images (norm_eval_stages=-1, ResNet's default), for 500 iterations with
# every 100-iteration checkpoint kept (the tune sets chose the iteration).
#   python tools/train.py configs/fc/fc_r18_1xb16-500it_offline-v2-cpu.py --work-dir work_dirs/fc_offline_v2
_base_ = ['./fc_r18_1xb16-300it_offline-v4-cpu.py']
model = dict(backbone=dict(norm_eval_stages=-1))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))  # no per-layer rates
train_cfg = dict(max_iters=500)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=5))
