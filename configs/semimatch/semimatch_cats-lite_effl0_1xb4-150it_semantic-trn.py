# SemiMatch on CATs-lite at the same 400 iterations as the supervised run
# (configs/cats/cats-lite_effl0_1xb4-400it_semantic-trn.py): the exact pairs keep the supervised loss,
# every pair (the cross-instance ones too) trains the pseudo-label loss on its strong view. SemiMatch's
# settings from the official code (sfc_plugin/correspondence/cats_model.py, SEMIMATCH_DEFAULTS):
# tau_c 0.1, p_cut 0.5, lambda_H 1.5, tau_ct 0.1, forward-backward check (0.1, 0.5), KeyOut 0.2,
# KeyMix off, dynamic balancing.
_base_ = ['../cats/cats-lite_effl0_1xb4-400it_semantic-trn.py']
model = dict(semimatch=dict())
