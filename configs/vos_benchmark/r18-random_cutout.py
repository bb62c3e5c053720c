# r18-random_vosbench.py on the cut-out benchmark (real objects with their own alpha over opencv-doc
# footage, 240 x 432; report split), written as configs/_base_/datasets/cutout_benchmark.py says.
_base_ = ['./r18-random_vosbench.py']
test_dataloader = dict(dataset=dict(data_root='data/cutout_report'))
