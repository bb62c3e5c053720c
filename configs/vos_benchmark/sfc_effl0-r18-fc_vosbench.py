# The default fused model (sfc_plugin/assets/default_model.py: EfficientNet-Lite0 + the project's FC
# ResNet-18) on the VOS benchmark.
_base_ = [
    '../_base_/models/sfc_effl0_r18.py',
    '../_base_/datasets/vos_benchmark.py',
    '../_base_/default_runtime.py',
]
