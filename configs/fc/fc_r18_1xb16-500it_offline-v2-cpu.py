# The default model's FC branch, second stage: the 800-iteration run of
# fc_r18_1xb16-800it_offline-cpu.py (stem..layer3 as shipped before, converted with
# tools/convert_checkpoint.py --num-stages 3) continued on 3x more real images (445: scikit-image
# photos, bikes.mp4 frames 0-124, opencv-doc's photos and all of Megamind.avi), with a fresh
# layer4, projector and predictor. docs/default_model.md records the commands and the iteration kept.
#   python tools/make_fc_training_data.py --out data/fc_offline_v2 --opencv-data OPENCV_DOC_DATA
#   python tools/train.py configs/fc/fc_r18_1xb16-500it_offline-v2-cpu.py --work-dir work_dirs/fc_offline_v2
_base_ = ['./fc_r18_1xb16-800it_offline-cpu.py']
data_root = 'data/fc_offline_v2'
stage1_checkpoint = 'work_dirs/fc_offline/fc_r18_stage1_layer3.pth'
model = dict(backbone=dict(init_cfg=dict(
    type='StrictPretrained', checkpoint=stage1_checkpoint, prefix='backbone.fine_grained.',
    allow_missing=['layer4.'])))
train_dataloader = dict(dataset=dict(data_root=data_root))
train_cfg = dict(max_iters=500)
# Every 100-iteration checkpoint is kept: the tune sets choose the iteration that ships.
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=5))
