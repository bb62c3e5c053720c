# Baseline without features: each source keypoint keeps its relative position from the source object box
# to the target box, mirrored when the pair file says the objects face opposite ways ("box prior,
# annotated facing"; a pair without the optional `mirrored` field counts as facing the same way).
_base_ = ['./sfc_effl0-r18-fc_spair71k.py']
model = dict(matcher=dict(method='box_prior'), flip='annotated')
