"""ResNet-18/50 feature extractor with torchvision's parameter names and per-stage strides.

The parameter names are exactly torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ...), so the published MoCo, SimSiam, PixPro, SFC and CRW backbones
load after a prefix strip (see ``sfc_plugin/models/converters.py``).
"""
from typing import Optional, Sequence, Type, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from sfc_plugin.registry import MODELS
from ..weight_init import he_init_conv_and_norm, with_default_ignores


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, padding_mode: str = 'zeros') -> nn.Conv2d:
    """3x3 convolution with padding 1 (zeros or reflection), no bias (a BN follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False,
                     padding_mode=padding_mode)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a BN follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, padding_mode: str = 'zeros') -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, padding_mode)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, padding_mode=padding_mode)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 convolutions with a residual connection (ResNet-50/101).

    The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"), as in every checkpoint
    this project loads.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, padding_mode: str = 'zeros') -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, padding_mode)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@MODELS.register_module()
class ResNet(BaseModule):
    """ResNet-18/50 without avgpool and fc, returning the last stage's feature map.

    The stem (7x7 conv with stride 2, then 3x3 max-pool with stride 2) is fixed; ``strides[i]`` is
    the stride of stage ``i + 1``, applied to its first block's strided convolution and to that
    block's 1x1 downsample convolution alike (no dilation). The two settings SFC uses:

    - FC training: ``strides=(1, 2, 1, 1)``, 4 stages -> 512 channels at stride 8
      (32x32 for a 256x256 crop).
    - Evaluation: ``strides=(1, 2, 1)``, ``num_stages=3`` -> ``layer3`` output at stride 8,
      256 (R18) or 1024 (R50) channels (60x107 for a 480x854 frame).

    ``num_stages=3`` removes ``layer4`` entirely (no parameters). Pretrained weights load with
    ``init_cfg=dict(type='StrictPretrained', checkpoint=PATH)``: unless the config says
    otherwise, this ResNet passes ``ignore_unexpected=('fc.',)`` and, with ``num_stages=3``,
    ``ignore_unexpected=('layer4.', 'fc.')`` to it, so a full torchvision-style checkpoint loads
    into the truncated network while any other mismatch is still an error.

    Args:
        depth: 18 or 50.
        strides: stride of each stage, one entry per stage.
        num_stages: 3 (up to ``layer3``) or 4.
        zero_init_residual: zero the last BN gamma of every residual block, so that each block
            starts as the identity; this helps training from scratch (Goyal et al., 2017) and is
            what the FC reference training does.
        padding_mode: padding of the convolutions with padding > 0 (the stem's 7x7 and every
            3x3): 'zeros' as torchvision, or 'reflect' as CRW (videowalk) trained its ResNet-18,
            which its weights need (``tools/convert_checkpoint.py`` says which a layout needs).
            The max-pool is unchanged (CRW keeps its padding too).
        norm_eval_stages: BatchNorm layers of the stem (0) and of stages 1..k (k) stay in eval mode
            while training: they normalise with, and keep, their running statistics; their affine
            weights still train. -1 (default): none. For continuing from weights whose statistics
            must carry over (numbered as mmpretrain's ``frozen_stages``).
        init_cfg: mmengine initialisation config (e.g. ``StrictPretrained``).
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        50: (Bottleneck, (3, 4, 6, 3)),
    }

    def __init__(self,
                 depth: int = 18,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 num_stages: int = 4,
                 zero_init_residual: bool = True,
                 padding_mode: str = 'zeros',
                 norm_eval_stages: int = -1,
                 init_cfg: Union[dict, list, None] = None) -> None:
        if depth not in self.arch_settings:
            raise ValueError(f'ResNet depth must be one of {sorted(self.arch_settings)}, got {depth}')
        if num_stages not in (3, 4):
            raise ValueError(f'ResNet num_stages must be 3 or 4, got {num_stages}')
        if len(strides) != num_stages:
            raise ValueError(f'ResNet needs one stride per stage: num_stages={num_stages}, '
                             f'strides={tuple(strides)}')
        if padding_mode not in ('zeros', 'reflect'):
            raise ValueError(f"ResNet padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
        if not -1 <= norm_eval_stages <= num_stages:
            raise ValueError(f'ResNet norm_eval_stages must be in -1..{num_stages}, got {norm_eval_stages}')
        ignored = ('layer4.', 'fc.') if num_stages == 3 else ('fc.',)
        super().__init__(init_cfg=with_default_ignores(init_cfg, ignored))
        self.depth = depth
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.padding_mode = padding_mode
        self.norm_eval_stages = norm_eval_stages
        block, stage_blocks = self.arch_settings[depth]

        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False, padding_mode=padding_mode)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, stage_blocks[0], strides[0])
        self.layer2 = self._make_layer(block, 128, stage_blocks[1], strides[1])
        self.layer3 = self._make_layer(block, 256, stage_blocks[2], strides[2])
        if num_stages == 4:
            self.layer4 = self._make_layer(block, 512, stage_blocks[3], strides[3])

        self.out_channels = self.inplanes
        self.stride = 4
        for stride in self.strides:
            self.stride *= stride

        # torchvision's initialisation; pretrained weights (init_cfg) overwrite it in init_weights().
        he_init_conv_and_norm(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)
                elif isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def _make_layer(self, block: Type[Union[BasicBlock, Bottleneck]], planes: int, blocks: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.padding_mode)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, padding_mode=self.padding_mode) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def train(self, mode: bool = True) -> 'ResNet':
        """``nn.Module.train``, with the BatchNorm layers of the first ``norm_eval_stages`` kept in eval mode."""
        super().train(mode)
        if mode and self.norm_eval_stages >= 0:
            frozen = [self.bn1] + [getattr(self, f'layer{i}') for i in range(1, self.norm_eval_stages + 1)]
            for part in frozen:
                for module in part.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, out_channels, ceil(H/stride), ceil(W/stride))."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        if self.num_stages == 4:
            x = self.layer4(x)
        return x
