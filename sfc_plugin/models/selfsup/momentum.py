"""The momentum (EMA) encoder that FC's target and MoCo's key encoder both are: a gradient-free copy of
the online modules, moved towards them by ``theta_t <- m theta_t + (1 - m) theta_o``."""
import copy
from typing import List, Sequence

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters take no gradient."""
    copied = copy.deepcopy(module)
    for param in copied.parameters():
        param.requires_grad_(False)
    return copied


def parameters_of(modules: Sequence[nn.Module]) -> List[nn.Parameter]:
    """The parameters of ``modules``, in order (a momentum copy's pair up with its online modules')."""
    return [param for module in modules for param in module.parameters()]


@torch.no_grad()
def momentum_update_(targets: Sequence[nn.Module], sources: Sequence[nn.Module], momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * source`` for every parameter, in place."""
    for target, source in zip(parameters_of(targets), parameters_of(sources)):
        target.mul_(momentum).add_(source.detach(), alpha=1 - momentum)
