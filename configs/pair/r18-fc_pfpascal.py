# The default model's fine-grained branch alone (the project's FC ResNet-18) on pfpascal.
_base_ = ['./sfc_effl0-r18-fc_pfpascal.py']
model = dict(backbone=dict(semantic=None))
