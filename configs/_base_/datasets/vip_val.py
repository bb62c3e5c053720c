# VIP (video instance-level human parsing), val videos, frames resized to 560x560, mIoU.
data_root = 'data/VIP'
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='sfc_plugin.video_collate'),  # mmengine looks collate functions up by full name
    dataset=dict(type='VIPDataset', data_root=data_root, input_size=(560, 560)),
)
test_evaluator = dict(type='VIPMetric')
test_cfg = dict(type='TestLoop')
