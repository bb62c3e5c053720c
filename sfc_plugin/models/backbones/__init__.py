from .efficientnet_lite import EfficientNetLite, EfficientNetLite0
from .resnet import BasicBlock, Bottleneck, ResNet
from .sfc_backbone import SFCBackbone

__all__ = ['BasicBlock', 'Bottleneck', 'ResNet', 'SFCBackbone', 'EfficientNetLite', 'EfficientNetLite0']
