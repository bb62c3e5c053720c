# The tiny EfficientNet-Lite0 MoCo run plus the cross-instance cycle term on the CPU: walk on
# _blocks.10 (the end of stage 5, stride 16, 112 channels), attention from _blocks.15 (the last
# block, stride 32), same-category pairs from a folder of category folders at 160 px with a 96 px
# crop (10 x 10 and 6 x 6 cells), tau 0.0007, weight 5e-4. Never point pairs_root at Tux Paint's
# animals stamps: they are held out of semantic-correspondence work (the dataset refuses them).
_base_ = ['./moco_effl0_tiny_cpu.py']
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
pairs_root = 'data/pairs'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CyclePairDataset',
        dataset={{_base_.train_dataloader.dataset}},
        pairs_root=pairs_root,
        pair_size=160,
        seed=0))
