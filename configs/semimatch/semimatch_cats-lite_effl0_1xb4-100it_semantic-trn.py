# SemiMatch on CATs-lite: as SemiMatch fine-tunes a supervised CATs checkpoint, this starts from the
# supervised run's 100-iteration checkpoint (configs/cats/cats-lite_effl0_1xb4-200it_semantic-trn.py; set
# load_from to where yours is) and trains 100 more, so it ends at the same 200 iterations as the
# supervised run. Every 'trn' pair trains: the labelled pairs keep the supervised loss, all pairs (the
# unlabelled cross-instance ones too) the pseudo-label loss on their strong view. SemiMatch's settings
# from the official code (SEMIMATCH_DEFAULTS in sfc_plugin/correspondence/cats_model.py: p_cut 0.5,
# lambda_H 1.5, forward-backward check (0.1, 0.5), KeyOut 0.2, KeyMix off, dynamic balancing) except the
# two temperatures: in the official code one flag sets both the network's soft-argmax temperature and the
# pseudo-label temperature tau_c, so tau_c follows this network's beta (0.02, not 0.1). On the tune split
# (mean PCK@0.1 over its categories) after 100 + 100 iterations: tau_c = tau_ct = 0.02 33.1, tau_c 0.02
# with tau_ct 0.1 27.4, the official 0.1 / 0.1 14.0; supervised alone 32.3 (docs/pair_training.md).
_base_ = ['../cats/cats-lite_effl0_1xb4-200it_semantic-trn.py']
model = dict(semimatch=dict(temperature=0.02, ce_temperature=0.02))
train_dataloader = dict(dataset=dict(unlabelled=True))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
train_cfg = dict(max_iters=100)
load_from = 'work_dirs/cats-lite_effl0_1xb4-200it_semantic-trn/iter_100.pth'
