# The tiny MoCo run plus the cross-instance cycle term, for tests and demos on the CPU: ResNet-18
# from scratch, walk on layer3 (stride 16), attention from layer4 (stride 32), same-category pairs
# from a folder of category folders (every ordered pair of two images of one folder) at 96 px with a
# 64 px crop (6 x 6 and 4 x 4 cells), tau 0.0007, weight 5e-4. Never point pairs_root at Tux Paint's
# animals stamps: they are held out of semantic-correspondence work (the dataset refuses them).
_base_ = ['./moco_r18_tiny_cpu.py']
model = dict(
    cycle=dict(
        type='CrossInstanceCycle',
        walk_layer='layer3',
        attention_layer='layer4',
        crop_size=64,
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
        pair_size=96,
        seed=0))
