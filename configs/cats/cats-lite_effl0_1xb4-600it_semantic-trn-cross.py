# Supervised CATs-lite on the labelled cross-instance 'trn' pairs only (the hand-annotated training
# categories), without the exact same-object pairs: same schedule as
# cats-lite_effl0_1xb4-600it_semantic-trn.py, which trains on both.
_base_ = ['./cats-lite_effl0_1xb4-600it_semantic-trn.py']
train_dataloader = dict(dataset=dict(kinds=['cross']))
