# SFC on DAVIS-2017 val: topk 15, context 20, radius 15, temperature 0.1, lambda 1.75
# (J&F 71.3 with the published MoCo v1 and FC weights; paper 71.2).
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
