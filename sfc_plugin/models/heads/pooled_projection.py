"""Global average pooling and a linear or two-layer MLP projection: the MoCo v1 / v2 head."""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from sfc_plugin.registry import MODELS


@MODELS.register_module()
class PooledProjectionHead(BaseModule):
    """Feature map -> global average pool -> ``fc`` -> (B, out_channels) embedding (not normalised).

    ``fc`` is one linear layer (MoCo v1: the ResNet's ``fc`` resized to 128 outputs) or, with
    ``hidden_channels``, linear -> ReLU -> linear (MoCo v2's MLP head). The parameter names
    (``fc.weight`` or ``fc.0.*``, ``fc.2.*``) are those of the published MoCo encoders' ``fc``, so
    their heads load by prefix too. Linear layers keep PyTorch's default initialisation, as in
    the reference code.

    Args:
        in_channels: channels of the backbone's feature map.
        out_channels: embedding size (MoCo: 128).
        hidden_channels: width of the MLP's hidden layer (MoCo v2: ``in_channels``), or None for
            a single linear layer.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int = 128, hidden_channels: Optional[int] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        if hidden_channels is None:
            self.fc = nn.Linear(in_channels, out_channels)
        else:
            self.fc = nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.ReLU(inplace=True),
                                    nn.Linear(hidden_channels, out_channels))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, out_channels)."""
        return self.fc(features.mean(dim=(2, 3)))
