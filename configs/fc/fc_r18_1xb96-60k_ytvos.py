# The paper's FC recipe: ResNet-18, 256 px crops, Adam 1e-3, weight decay 0, batch 96, 60k
# iterations, positive radius r = 0.5, on YouTube-VOS frames.
_base_ = [
    '../_base_/models/fc_r18.py',
    '../_base_/datasets/ytvos_frames_two_view.py',
    '../_base_/schedules/adam_60k.py',
    '../_base_/default_runtime.py',
]
