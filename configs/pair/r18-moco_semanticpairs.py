# A MoCo-trained ResNet-18 on the semantic pair set (set the checkpoint: see the _base_ model).
_base_ = ['../_base_/models/pair_r18_moco.py', '../_base_/datasets/semantic_pairs.py', '../_base_/pair_runtime.py']
