# The built-in semantic pair model on SPair-71k's test split (SCOT's OT-RHM exponent for SPair-71k, 1.0,
# if the matcher is switched to ot_rhm).
_base_ = ['../_base_/models/pair_semantic_effl0.py', '../_base_/datasets/spair71k_test.py',
          '../_base_/pair_runtime.py']
model = dict(matcher=dict(ot_exp2=1.0))
