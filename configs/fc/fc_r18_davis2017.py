# FC ResNet-18 alone on DAVIS-2017 val: topk 10, context 20, radius 12, temperature 0.05 (J&F 67.98).
# The fine-grained branch of the SFC model (ResNet-18 cut after layer3, stride 8) without the semantic one.
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(_delete_=True, type='SFCBackbone', fine_grained={{_base_.model.backbone.fine_grained}}),
    propagation=dict(topk=10, radius=12, temperature=0.05),
)
