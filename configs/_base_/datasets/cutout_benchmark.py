# The cut-out VOS benchmark (real objects with their own alpha over opencv-doc footage, DAVIS
# layout, 240 x 432), report split, written by
#   python tools/make_vos_benchmark.py --kind cutout --split report --out data/cutout_report \
#       --videos 6 --frames 30 --height 240 --width 432 --stamps STAMPS_DIR --opencv-data OPENCV_DATA_DIR
_base_ = ['./davis2017_val.py']
test_dataloader = dict(dataset=dict(data_root='data/cutout_report', split='val'))
