# Baseline: the fine-grained ResNet-18 with random initialisation (seed 0) on pfwillow.
_base_ = ['./r18-fc_pfwillow.py']
model = dict(backbone=dict(fine_grained=dict(init_cfg=None)))
