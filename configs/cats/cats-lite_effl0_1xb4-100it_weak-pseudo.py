# CATs-lite pre-trained on weakly supervised pseudo-labels: the pairs tools/make_weak_pairs.py mines from
# class folders (image-level labels only; docs/weak_supervision.md), here the semantic pair set's
# unlabelled 'trn' categories written as class folders on per-image noise backgrounds:
#   python tools/make_semantic_pairs.py ... --class-folders data/semantic_classes_noise --class-backgrounds noise
#   python tools/make_weak_pairs.py data/semantic_classes_noise --out data/weak_pairs
# 100 iterations, then supervised on the labelled 'trn' pairs for 100 more
# (cats-lite_effl0_1xb4-100it_semantic-trn_from-weak.py): 200 in all, as the supervised run.
_base_ = ['./cats-lite_effl0_1xb4-200it_semantic-trn.py']
train_dataloader = dict(dataset=dict(dataset=dict(data_root='data/weak_pairs')))
train_cfg = dict(max_iters=100)
