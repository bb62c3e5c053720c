# DAVIS-2017 val, semi-supervised, native 480p: JPEGImages/480p, Annotations/480p, ImageSets/2017.
data_root = 'data/DAVIS'
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='sfc_plugin.video_collate'),  # mmengine looks collate functions up by full name
    dataset=dict(type='DAVISDataset', data_root=data_root, split='val', resolution='480p'),
)
test_evaluator = dict(type='DAVISMetric')
test_cfg = dict(type='TestLoop')
