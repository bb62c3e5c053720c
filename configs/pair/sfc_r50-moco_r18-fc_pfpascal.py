# SFC R50 (MoCo) + R18 (FC) from converted checkpoints on pfpascal:
#   python tools/test.py configs/pair/sfc_r50-moco_r18-fc_pfpascal.py sfc.pth
_base_ = ['../_base_/models/pair_sfc_r50_r18.py', '../_base_/datasets/pfpascal_test.py', '../_base_/pair_runtime.py']
# SCOT's OT-RHM plan exponent on PF-PASCAL / PF-WILLOW (model.matcher.method=ot_rhm; the other
# matchers ignore it).
model = dict(matcher=dict(ot_exp2=0.5))
