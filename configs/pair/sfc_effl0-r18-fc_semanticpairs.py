# The default fused model (chosen for video propagation) on the semantic pair set: the baseline a
# semantic config has to beat.
_base_ = ['../_base_/models/pair_sfc_effl0_r18.py', '../_base_/datasets/semantic_pairs.py', '../_base_/pair_runtime.py']
