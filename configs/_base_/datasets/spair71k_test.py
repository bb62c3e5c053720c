# SPair-71k test split (Layout/large/test.txt, 12,234 pairs, 18 categories) in its published layout.
# PCK@alpha by the max side of the target object's box, per pair (HPF / SCOT), also per keypoint; under
# CATs' protocol (model.protocol='cats') by the max side of the source box in the 256 x 256 frame.
data_root = 'data/SPair-71k'
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='sfc_plugin.pair_collate'),  # mmengine looks collate functions up by full name
    dataset=dict(type='SPair71kDataset', data_root=data_root, split='test'),
)
test_evaluator = dict(type='PairPCKMetric', alphas=(0.05, 0.1, 0.15), reference='bbox', average='pair')
test_cfg = dict(type='TestLoop')
