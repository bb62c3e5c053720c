# The project's real-pair benchmark with exact correspondences (geometric, not semantic), in the
# SPair-71k layout, written by
#   python tools/make_pair_benchmark.py --out data/pair_benchmark
_base_ = ['./spair71k_test.py']
data_root = 'data/pair_benchmark'
test_dataloader = dict(dataset=dict(data_root=data_root))
