# The default fused model (EfficientNet-Lite0 + FC ResNet-18) on pfwillow.
_base_ = ['../_base_/models/pair_sfc_effl0_r18.py', '../_base_/datasets/pfwillow_test.py', '../_base_/pair_runtime.py']
# SCOT's OT-RHM plan exponent on PF-PASCAL / PF-WILLOW (model.matcher.method=ot_rhm; the other
# matchers ignore it).
model = dict(matcher=dict(ot_exp2=0.5))
