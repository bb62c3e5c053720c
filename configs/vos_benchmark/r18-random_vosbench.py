# Baseline: the default model's fine-grained network (ResNet-18 cut after layer3, stride 8) with
# random initialisation (seeded by the runtime's seed), the default's settings and input size rule.
_base_ = ['./r18-fc-offline_vosbench.py']
model = dict(backbone=dict(fine_grained=dict(init_cfg=None)))
