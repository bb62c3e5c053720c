# JHMDB split 1 (the UVC/CRW list), frames resized to 320x320, PCK@0.1 and @0.2.
data_root = 'data/JHMDB'
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='sfc_plugin.video_collate'),  # mmengine looks collate functions up by full name
    dataset=dict(type='JHMDBDataset', data_root=data_root, ann_file='jhmdb_test_split1.txt',
                 input_size=(320, 320)),
)
test_evaluator = dict(type='JHMDBPCKMetric', alphas=(0.1, 0.2))
test_cfg = dict(type='TestLoop')
