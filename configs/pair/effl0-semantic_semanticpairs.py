# The built-in semantic pair model (EfficientNet-Lite0 hyperpixels, chosen on the tune split) on the
# semantic pair set's report split.
_base_ = ['../_base_/models/pair_semantic_effl0.py', '../_base_/datasets/semantic_pairs.py',
          '../_base_/pair_runtime.py']
