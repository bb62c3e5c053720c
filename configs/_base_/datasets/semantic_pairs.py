# The project's cross-instance semantic pair set (tools/make_semantic_pairs.py, docs/semantic_pairs.md):
# hand-placed keypoints on photographed objects composited on real photos, SPair-71k layout. Split
# 'test' is the report split, 'val' the tune split (other categories and instances): choose settings
# with --cfg-options test_dataloader.dataset.split=val (or tools/benchmark_pairs.py --split val), report on
# 'test'. PCK@alpha by the max side of the target object's box, per pair, as SPair-71k.
data_root = 'data/semantic_pairs'
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
