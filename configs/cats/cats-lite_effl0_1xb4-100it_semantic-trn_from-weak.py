# Supervised CATs-lite on the labelled 'trn' pairs, starting from the weak-supervision pre-training
# (cats-lite_effl0_1xb4-100it_weak-pseudo.py; set load_from to where yours is): 100 + 100 iterations, as
# many as the supervised run.
_base_ = ['./cats-lite_effl0_1xb4-200it_semantic-trn.py']
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
train_cfg = dict(max_iters=100)
load_from = 'work_dirs/cats-lite_effl0_1xb4-100it_weak-pseudo/iter_100.pth'
