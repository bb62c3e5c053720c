"""Weight initialisation: ``StrictPretrained``, an ``init_cfg`` initialiser that loads a checkpoint and refuses any
mismatch; the He initialisation of the backbones; ``init_weights()`` without a line per parameter.

mmengine's ``Pretrained`` loads with ``strict=False``: a checkpoint with the wrong prefix or the
wrong architecture leaves the network randomly initialised with only a warning. This one raises
``CheckpointMismatchError`` listing the missing, unexpected and mis-shaped keys instead.
"""
import logging
from typing import Mapping, Optional, Sequence, Union

from mmengine.logging import MMLogger, print_log
from mmengine.model.weight_init import update_init_info
from torch import nn

from sfc_plugin.registry import SCOPE, WEIGHT_INITIALIZERS
from sfc_plugin.utils.checkpoint import (extract_state_dict, fill_num_batches_tracked, load_checkpoint_file,
                                         load_state_dict_strict, strip_prefix)


@WEIGHT_INITIALIZERS.register_module()
class StrictPretrained:
    """Initialise a module from a checkpoint file; every key must match unless ignored on purpose.

    Usage: ``init_cfg=dict(type='StrictPretrained', checkpoint=PATH, prefix='backbone.')``.

    Args:
        checkpoint: path of a checkpoint, loaded with ``weights_only=True``. Its tensors are taken
            from ``state_dict``, ``model`` or the top level.
        prefix: load only the keys starting with it, stripped (e.g. ``'backbone.'``).
        ignore_unexpected: prefixes of checkpoint keys the module deliberately lacks (e.g.
            ``('layer4.', 'fc.')`` for a ResNet truncated after ``layer3``); they are logged.
        allow_missing: prefixes of the module's keys the checkpoint deliberately lacks (e.g.
            ``('layer4.',)`` when a 4-stage network starts from a 3-stage file); those layers keep
            their initialisation and are logged.
        map_location: device the tensors are moved to before they are copied into the module.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 ignore_unexpected: Sequence[str] = (), allow_missing: Sequence[str] = (),
                 map_location: str = 'cpu') -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.ignore_unexpected = tuple(ignore_unexpected)
        self.allow_missing = tuple(allow_missing)
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        source = self.checkpoint if not self.prefix else f'{self.checkpoint} (keys under {self.prefix!r})'
        state_dict = extract_state_dict(load_checkpoint_file(self.checkpoint), self.checkpoint)
        if self.prefix:
            state_dict = strip_prefix(state_dict, self.prefix, self.checkpoint)
        added = fill_num_batches_tracked(state_dict)
        state_dict = {key: value.to(self.map_location) for key, value in state_dict.items()}
        result = load_state_dict_strict(module, state_dict, source=source,
                                        ignore_unexpected=list(self.ignore_unexpected),
                                        allow_missing=list(self.allow_missing))
        print_log(f'Loaded {type(module).__name__} from {source}', logger='current')
        if result['missing']:
            print_log(f'{source}: {len(result["missing"])} keys of the model are not in the checkpoint '
                      f'by design (prefixes {self.allow_missing}) and keep their initialisation',
                      logger='current')
        if result['ignored']:
            print_log(f'{source}: ignored {len(result["ignored"])} keys the model does not have by '
                      f'design (prefixes {self.ignore_unexpected}): '
                      f'{", ".join(result["ignored"][:10])}{", ..." if len(result["ignored"]) > 10 else ""}',
                      logger='current')
        if added:
            print_log(f'{source}: the checkpoint predates BN num_batches_tracked; set {added} '
                      'counters to 0', logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=f'StrictPretrained: load from {source}')


def with_default_ignores(init_cfg: Union[dict, list, None],
                         ignore_unexpected: Sequence[str]) -> Union[dict, list, None]:
    """Copy of ``init_cfg`` where each ``StrictPretrained`` entry that does not set
    ``ignore_unexpected`` itself gets ``ignore_unexpected``."""
    if init_cfg is None:
        return None
    cfgs = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg)
    updated = []
    for cfg in cfgs:
        cfg = dict(cfg)
        if (cfg.get('type') in ('StrictPretrained', f'{SCOPE}.StrictPretrained', StrictPretrained)
                and 'ignore_unexpected' not in cfg):
            cfg['ignore_unexpected'] = tuple(ignore_unexpected)
        updated.append(cfg)
    return updated[0] if isinstance(init_cfg, Mapping) else updated


def he_init_conv_and_norm(model: nn.Module) -> None:
    """He initialisation (fan-out) of every convolution and identity BatchNorms: the random initialisation of
    torchvision's ResNet and of the TensorFlow EfficientNets, before pretrained weights overwrite it."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def init_weights_quietly(model: nn.Module) -> None:
    """``model.init_weights()`` with mmengine's logger at WARNING: without an open log file it logs
    one INFO line per parameter (the ``init_cfg`` messages at WARNING and above still show)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
