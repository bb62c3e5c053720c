# The default fused model (EfficientNet-Lite0 + FC ResNet-18) on pairbench.
_base_ = ['../_base_/models/pair_sfc_effl0_r18.py', '../_base_/datasets/pair_benchmark.py', '../_base_/pair_runtime.py']
