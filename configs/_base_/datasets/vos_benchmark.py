# The project's real-footage VOS benchmark with exact masks (DAVIS layout, 480p), written by
#   python tools/make_vos_benchmark.py --out data/vos_benchmark --videos 6 --frames 30 --seed 0
_base_ = ['./davis2017_val.py']
test_dataloader = dict(dataset=dict(data_root='data/vos_benchmark', split='val'))
