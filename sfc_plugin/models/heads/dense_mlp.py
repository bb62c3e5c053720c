"""Per-location MLP (1x1 convolutions): the FC projector and predictor."""
from typing import Union

import torch
from mmengine.model import BaseModule
from torch import nn

from sfc_plugin.registry import MODELS


@MODELS.register_module()
class DenseMLPHead(BaseModule):
    """1x1 conv -> BN -> ReLU -> 1x1 conv, applied at every location of a feature map.

    FC uses it as projector (512 -> 2048 -> 256) and predictor (256 -> 2048 -> 256). The
    submodule names (``linear1``, ``bn1``, ``linear2``) are those of the SFC and PixPro reference
    code, so their projector/predictor weights load by prefix.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.linear1 = nn.Conv2d(in_channels, hidden_channels, kernel_size=1)
        self.bn1 = nn.BatchNorm2d(hidden_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv2d(hidden_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, out_channels, h, w)."""
        return self.linear2(self.relu1(self.bn1(self.linear1(x))))
