from .resnet import BasicBlock, Bottleneck, ResNet
from .sfc_backbone import SFCBackbone
from .efficientnet_lite import EfficientNetLite0

__all__ = ['BasicBlock', 'Bottleneck', 'ResNet', 'SFCBackbone', 'EfficientNetLite0']
