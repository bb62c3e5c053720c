# Experiment, not shipped (docs/default_model.md, "Why v2 lost"): the shipped second stage
# (fc_r18_1xb16-300it_offline-v4-cpu.py: its data and first-stage checkpoint, the warm-started
# stem..layer3 at a tenth of the rate) with the BatchNorm statistics trained on the new images
# (norm_eval_stages=-1, ResNet's default), for 400 iterations. It scored no better than v2.
#   python tools/train.py configs/fc/fc_r18_1xb16-400it_offline-v3-cpu.py --work-dir work_dirs/fc_offline_v3
_base_ = ['./fc_r18_1xb16-300it_offline-v4-cpu.py']
model = dict(backbone=dict(norm_eval_stages=-1))
train_cfg = dict(max_iters=400)
