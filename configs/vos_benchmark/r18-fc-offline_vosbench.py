# The fine-grained branch of the default model alone: the FC ResNet-18 trained by this project
# (configs/fc/fc_r18_1xb16-800it_offline-cpu.py, then configs/fc/fc_r18_1xb16-300it_offline-v4-cpu.py;
# shipped in sfc_plugin/assets/default_model.pth),
# with the default model's propagation settings and input size rule.
_base_ = ['./sfc_effl0-r18-fc_vosbench.py']
model = dict(backbone=dict(semantic=None))
