# Experiment (docs/semantic_training.md, "MoCo vs MoCo + cycle"): the MoCo run of
# moco_effl0_1xb16-300it_semantic-cpu.py plus Xiao et al.'s cross-instance cycle term at the same
# iterations: walk on _blocks.10 (stride 16), attention from _blocks.15, same-category pairs of the
# semantic pair set's unlabelled 'trn' split at 160 px with a 96 px crop, tau 0.0007, weight 5e-4.
_base_ = ['./moco_effl0_1xb16-300it_semantic-cpu.py']
model = dict(
    cycle=dict(
        type='CrossInstanceCycle',
        walk_layer='_blocks.10',
        attention_layer='_blocks.15',
        crop_size=96,
        rotation=10.0,
        flip_prob=0.5,
        temperature=0.0007,
        loss_weight=5e-4),
)
pairs_root = 'data/semantic_pairs'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CyclePairDataset',
        dataset={{_base_.train_dataloader.dataset}},
        pairs_root=pairs_root,
        split='trn',
        pair_size=160,
        seed=0))
