# A tiny SFC model for tests and demos: the SFC model of _base_/models/sfc_r50_r18.py with a ResNet-18
# semantic branch, i.e. two ResNet-18 branches cut after layer3 (stride 8, 256 + 256
# channels), fused as normalize(cat(lambda * normalize(F_fc), normalize(F_sem))) with lambda = 1.75,
# and small propagation settings (topk 5, context 4, radius 6, temperature 0.05). Weights are random
# unless a checkpoint is given (keys backbone.semantic.*, backbone.fine_grained.*), e.g.
#   .venv/bin/python tools/test.py configs/sfc/sfc_r18-r18_tiny.py tiny.pth \
#       --cfg-options test_dataloader.dataset.data_root=path/to/DAVIS
#   sfc-export onnx configs/sfc/sfc_r18-r18_tiny.py tiny.pth --out exports/tiny --image-size 64 96
_base_ = [
    '../_base_/models/sfc_r50_r18.py',
    '../_base_/datasets/davis2017_val.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(semantic=dict(depth=18)),
    propagation=dict(topk=5, context_len=4, radius=6, temperature=0.05),
)
test_dataloader = dict(num_workers=0)
