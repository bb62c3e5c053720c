# The default FC model of sfc_plugin, first stage (the second, which ships, continues from it:
# fc_r18_1xb16-300it_offline-v4-cpu.py), trained on 2 CPU cores on real images that
# install offline (scikit-image photos + bikes.mp4 frames 0-124; the VOS benchmark uses other shots):
#   python tools/make_fc_training_data.py --out data/fc_offline
#   python tools/train.py configs/fc/fc_r18_1xb16-800it_offline-cpu.py --work-dir work_dirs/fc_offline
# The paper's recipe with the size cut to what 2 CPU cores train in about 1.5 hours: 128 px crops
# (16x16 feature maps), batch 16, 800 iterations. Everything else as the paper (r = 0.5, Adam 1e-3).
_base_ = [
    '../_base_/models/fc_r18.py',
    '../_base_/datasets/fc_offline_images.py',
    '../_base_/schedules/adam_60k.py',
    '../_base_/default_runtime.py',
]
train_cfg = dict(max_iters=800)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=3),
)
