# EfficientNet-Lite0 alone (ImageNet weights), run to its last block (15) so that any block can be a
# hyperpixel layer (model.layers=[semantic._blocks.N, ...]); what tools/benchmark_pairs.py searches
# over on the tune split. Without layers it matches block 15's output (stride 32).
_base_ = ['../_base_/models/pair_sfc_effl0_r18.py', '../_base_/datasets/semantic_pairs.py', '../_base_/pair_runtime.py']
model = dict(backbone=dict(fine_grained=None, semantic=dict(out_block=15)))
