# The built-in semantic pair model (what sfc-match runs by default): its one definition is
# sfc_plugin/assets/semantic_pair_model.py, installed with the package; the repo's configs reach it here.
_base_ = ['../../../sfc_plugin/assets/semantic_pair_model.py']
