# The default fused model (EfficientNet-Lite0 + FC ResNet-18) on spair71k.
_base_ = ['./_base_/models/sfc_effl0-r18-fc.py', './_base_/datasets/spair71k_test.py', './_base_/pair_runtime.py']
