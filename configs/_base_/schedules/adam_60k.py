# FC recipe: Adam, lr 1e-3, no weight decay, no lr schedule, 60k iterations.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0.0))
param_scheduler = []
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000)
auto_scale_lr = dict(base_batch_size=96, enable=False)
