# The built-in semantic pair model with a soft box prior: the feature similarity times a Gaussian around
# where the box prior puts the point (sigma 0.3 of the target box's longer side, chosen on the tune
# split). It reads the annotated object boxes of both images, as the box-prior baseline does: for
# benchmarks that give boxes (SPair-71k, the semantic pair set), not for sfc-match.
_base_ = ['./effl0-semantic_semanticpairs.py']
model = dict(matcher=dict(box_prior_sigma=0.3))
