# The default model's FC branch, second stage (the one that ships; docs/default_model.md records the
# runs and the tune sets' scores): the first stage's stem..layer3 (fc_r18_1xb16-800it_offline-cpu.py)
# continued for 300 iterations on 3x more real images (445: scikit-image photos, bikes.mp4 frames 0-124,
# opencv-doc's photos and all of Megamind.avi) with a fresh layer4, projector and predictor. Two settings
# keep what the first stage learned: the warm-started layers learn at a tenth of the rate, and their
# BatchNorm statistics are kept (training on the new images otherwise replaces them, which alone cost
# the branch 4 J&F points on the cut-out tune set).
#   python tools/make_fc_training_data.py --out data/fc_offline_v2 --opencv-data OPENCV_DOC_DATA
#   python tools/train.py configs/fc/fc_r18_1xb16-300it_offline-v4-cpu.py --work-dir work_dirs/fc_offline_v4
#
# The first stage's checkpoint is `stage1_checkpoint` below: the file the first stage's commands in
# docs/default_model.md write (tools/train.py ... --work-dir work_dirs/fc_offline, then
# tools/convert_checkpoint.py ... --num-stages 3), relative to the directory tools/train.py runs in (the
# repository root). To start from another file:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# (setting stage1_checkpoint itself there changes nothing: a config's variables are substituted when the
# file is read).
_base_ = [
    '../_base_/models/fc_r18.py',
    '../_base_/datasets/fc_offline_images.py',
    '../_base_/schedules/adam_60k.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/fc_offline_v2'
stage1_checkpoint = 'work_dirs/fc_offline/fc_r18_stage1_layer3.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='StrictPretrained', checkpoint=stage1_checkpoint, prefix='backbone.fine_grained.',
                  allow_missing=['layer4.']),
    norm_eval_stages=3,  # BatchNorm of the stem and layers 1-3 in eval mode: their running statistics kept
))
train_dataloader = dict(dataset=dict(data_root=data_root))
warm_lr_mult = 0.1  # the warm-started stem..layer3 (the layers the fused model keeps)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    # online backbone only: the target network has no gradients (EMA of the online one)
    'backbone.conv1': dict(lr_mult=warm_lr_mult),
    'backbone.bn1': dict(lr_mult=warm_lr_mult),
    'backbone.layer1': dict(lr_mult=warm_lr_mult),
    'backbone.layer2': dict(lr_mult=warm_lr_mult),
    'backbone.layer3': dict(lr_mult=warm_lr_mult),
}))
train_cfg = dict(max_iters=300)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=4),
)
