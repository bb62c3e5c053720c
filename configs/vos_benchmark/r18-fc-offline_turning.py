# r18-fc-offline_vosbench.py on the turning benchmark (rendered 3D objects that turn, thin and returning ones, 240 x 432;
# report set), written as configs/_base_/datasets/turning_benchmark.py says.
_base_ = ['./r18-fc-offline_vosbench.py']
test_dataloader = dict(dataset=dict(data_root='data/turning_report'))
