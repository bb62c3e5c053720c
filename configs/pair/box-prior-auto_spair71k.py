# Box prior whose mirroring is decided from the default model's features ("box prior, facing from
# features"): the target is judged mirrored when its mirror's features agree better with the source's.
_base_ = ['./box-prior_spair71k.py']
model = dict(flip='auto')
