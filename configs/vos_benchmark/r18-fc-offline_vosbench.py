# The fine-grained branch alone: the FC ResNet-18 trained by this project
# (configs/fc/fc_r18_1xb16-800it_offline-cpu.py), shipped as sfc_plugin/assets/default_model.pth.
_base_ = ['./r18-random_vosbench.py']
model = dict(backbone=dict(fine_grained=dict(init_cfg=dict(
    type='StrictPretrained', checkpoint='sfc_plugin/assets/default_model.pth',
    prefix='backbone.fine_grained.'))))
