"""Test-only pieces for MoCo (imported by configs written in the tests): each process saves its queue."""
import os

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sfc_plugin.registry import HOOKS


@HOOKS.register_module(force=True)
class SaveQueuePerRankHook(Hook):
    """After training, every process writes ``queue``, ``queue_ptr`` and ``num_steps`` of its model
    to ``<work_dir>/queue_rank<rank>.pth``."""

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = dict(queue=model.queue.clone(), queue_ptr=model.queue_ptr.clone(),
                     num_steps=model.num_steps.clone(), conv1=model.backbone.conv1.weight.detach().clone())
        torch.save(state, os.path.join(runner.work_dir, f'queue_rank{get_rank()}.pth'))
