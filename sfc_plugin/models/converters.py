"""Published self-supervised checkpoints -> plain torchvision-style ResNet state dicts.

One function per layout of docs/method.md section 4; each takes the loaded checkpoint (a dict) and
returns the backbone's tensors under torchvision's names (``conv1.weight``,
``layer1.0.conv1.weight``, ...), without ``fc.*``:

=============  ============  ====================  ==========================================
layout         top key       prefix stripped       also
=============  ============  ====================  ==========================================
moco           state_dict    module.encoder_q.     drop fc.* (the projection MLP), encoder_k, queue
simsiam        state_dict    module.encoder.       drop fc.* (the projector), predictor
pixpro         model         module.encoder.       drop the momentum encoder and heads
sfc_fc         model         online_encoder.       drop target encoder, projectors, predictor
crw            model         encoder.model.        rename wrapped convs, drop head / selfsim_fc
torchvision    (none)        (none)                drop fc.*
fc_plugin      state_dict    backbone.             this plugin's FC training (tools/train.py)
moco_plugin    state_dict    backbone.             this plugin's MoCo training: drop key encoder,
                                                   head, queue
=============  ============  ====================  ==========================================

``convert_checkpoint_file`` (behind ``tools/convert_checkpoint.py``) converts a file, checks that
the result loads strictly into ``ResNet`` and writes it, optionally under a prefix and merged with
other converted files into one fused ``SFCBackbone`` checkpoint.
"""
import logging
import os
import re
from typing import Callable, Dict, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log

from sfc_plugin.utils.checkpoint import (extract_state_dict, fill_num_batches_tracked, load_checkpoint_file,
                                         load_state_dict_strict, strip_prefix)
from sfc_plugin.utils.io import atomic_path
from sfc_plugin.version import __version__
from .backbones.resnet import ResNet

StateDict = Dict[str, torch.Tensor]

# CRW (videowalk) trained its ResNet-18 with reflection padding; in its released checkpoint the
# padded convolutions -- the stem's conv1 and every block's conv1/conv2, i.e. exactly the convs
# with padding > 0 -- are wrapped as nn.Sequential(ReflectionPad2d, Conv2d), so their weight is
# stored as `conv1.1.weight` / `conv2.1.weight` (`.0` is the parameter-free pad). The 1x1
# downsample convs have no padding and were never wrapped; `downsample.1.weight` is a BN weight
# and must stay as it is. The reference loader renames keys containing `conv1.1.weight` or
# `conv2.1.weight`; this pattern matches the same keys (anchored at the end of the key).
_CRW_WRAPPED_CONV = re.compile(r'^((?:.*\.)?conv[12])\.1\.weight$')


def _tensors_under(checkpoint: Mapping, top_key: str, layout: str, source: str) -> Mapping:
    if top_key not in checkpoint or not isinstance(checkpoint[top_key], Mapping):
        raise ValueError(f'{source}: not a {layout} checkpoint: expected the top-level key '
                         f'{top_key!r}, found {sorted(map(str, checkpoint))[:10]}')
    return checkpoint[top_key]


def _without_fc(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    return {key: value for key, value in state_dict.items() if not key.startswith('fc.')}


def convert_moco(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """MoCo v1/v2 (``moco_v1_200ep_pretrain.pth.tar``): the query encoder without its fc."""
    state_dict = _tensors_under(checkpoint, 'state_dict', 'MoCo', source)
    return _without_fc(strip_prefix(state_dict, 'module.encoder_q.', source))


def convert_simsiam(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """SimSiam (``checkpoint_0099.pth.tar``): the encoder without its projector (``fc.*``)."""
    state_dict = _tensors_under(checkpoint, 'state_dict', 'SimSiam', source)
    return _without_fc(strip_prefix(state_dict, 'module.encoder.', source))


def convert_pixpro(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """PixPro (``pixpro_base_r50_400ep_*.pth``): the online encoder."""
    state_dict = _tensors_under(checkpoint, 'model', 'PixPro', source)
    return _without_fc(strip_prefix(state_dict, 'module.encoder.', source))


def convert_sfc_fc(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """SFC's FC network (``pretrained_fc.pth``): the online encoder."""
    state_dict = _tensors_under(checkpoint, 'model', 'SFC FC', source)
    return _without_fc(strip_prefix(state_dict, 'online_encoder.', source))


def convert_crw(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """CRW (``pretrained.pth``): the encoder, wrapped padded convs unwrapped, head skipped.

    Keys outside ``encoder.model.`` (the ``selfsim_fc`` head) are skipped; checkpoints whose
    convs are not wrapped pass through unchanged.
    """
    state_dict = _tensors_under(checkpoint, 'model', 'CRW', source)
    encoder = _without_fc(strip_prefix(state_dict, 'encoder.model.', source))
    return {_CRW_WRAPPED_CONV.sub(r'\1.weight', key): value for key, value in encoder.items()}


def convert_torchvision(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """A plain torchvision ResNet state dict: everything but ``fc.*``."""
    not_tensors = [str(key) for key, value in checkpoint.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(f'{source}: not a plain torchvision state dict: entries {not_tensors[:10]} '
                         'are not tensors')
    return _without_fc(checkpoint)


def convert_fc_plugin(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """An FC checkpoint written by this plugin's ``tools/train.py``: the online backbone."""
    state_dict = _tensors_under(checkpoint, 'state_dict', 'sfc_plugin FC', source)
    return {key[len('backbone.'):]: value for key, value in state_dict.items()
            if key.startswith('backbone.')}


def convert_moco_plugin(checkpoint: Mapping, source: str = 'checkpoint') -> StateDict:
    """A MoCo checkpoint written by this plugin's ``tools/train.py``: the query backbone."""
    state_dict = _tensors_under(checkpoint, 'state_dict', 'sfc_plugin MoCo', source)
    return strip_prefix(state_dict, 'backbone.', source)


CONVERTERS: Dict[str, Callable[[Mapping, str], StateDict]] = dict(
    moco=convert_moco,
    simsiam=convert_simsiam,
    pixpro=convert_pixpro,
    sfc_fc=convert_sfc_fc,
    crw=convert_crw,
    torchvision=convert_torchvision,
    fc_plugin=convert_fc_plugin,
    moco_plugin=convert_moco_plugin,
)


# The padding each layout's network was trained with, which ResNet(padding_mode=...) must use for
# those weights to compute what they were trained for (zeros unless listed).
PADDING_MODES: Dict[str, str] = dict(crw='reflect')


def _has_prefix(state_dict, prefix: str) -> bool:
    return isinstance(state_dict, Mapping) and any(str(key).startswith(prefix) for key in state_dict)


def detect_layout(checkpoint: Mapping, source: str = 'checkpoint') -> str:
    """Name of the layout in ``CONVERTERS`` that ``checkpoint`` has, from its top key and prefixes."""
    state_dict, model = checkpoint.get('state_dict'), checkpoint.get('model')
    if _has_prefix(state_dict, 'module.encoder_q.'):
        return 'moco'
    if _has_prefix(state_dict, 'module.encoder.'):
        return 'simsiam'
    if _has_prefix(state_dict, 'backbone.') and _has_prefix(state_dict, 'target_backbone.'):
        return 'fc_plugin'
    if _has_prefix(state_dict, 'backbone.') and _has_prefix(state_dict, 'key_backbone.'):
        return 'moco_plugin'
    if _has_prefix(model, 'online_encoder.'):
        return 'sfc_fc'
    if _has_prefix(model, 'module.encoder.'):
        return 'pixpro'
    if _has_prefix(model, 'encoder.model.'):
        return 'crw'
    if 'conv1.weight' in checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return 'torchvision'
    inner = next((entry for entry in (state_dict, model) if isinstance(entry, Mapping)), checkpoint)
    raise ValueError(f'{source}: unknown checkpoint layout (top-level keys '
                     f'{sorted(map(str, checkpoint))[:10]}, e.g. {list(map(str, inner))[:5]}); '
                     f'pass --layout, one of {sorted(CONVERTERS)}')


def infer_depth(state_dict: Mapping[str, torch.Tensor]) -> int:
    """50 for a bottleneck ResNet (blocks with ``conv3``), 18 otherwise."""
    return 50 if 'layer1.0.conv3.weight' in state_dict else 18


def check_backbone(state_dict: StateDict, depth: int, num_stages: int, source: str) -> StateDict:
    """Load ``state_dict`` strictly into ``ResNet(depth, num_stages)``; return the keys it uses.

    Raises CheckpointMismatchError listing missing, unexpected and mis-shaped keys. With
    ``num_stages=3`` the ``layer4.*`` keys are the only ones allowed to be left over (and dropped).
    """
    model = ResNet(depth=depth, num_stages=num_stages, strides=(1, 2, 2, 2)[:num_stages])
    ignore = ['layer4.'] if num_stages == 3 else []
    result = load_state_dict_strict(model, state_dict, source=f'{source} as ResNet-{depth} '
                                    f'({num_stages} stages)', ignore_unexpected=ignore)
    ignored = set(result['ignored'])
    return {key: value for key, value in state_dict.items() if key not in ignored}


def convert_checkpoint_file(src: str, out: str, layout: str = 'auto', depth: Optional[int] = None,
                            num_stages: int = 4, prefix: str = '', merge: Sequence[str] = (),
                            allow_pickle: bool = False) -> dict:
    """Convert ``src``, check it against the ResNet, prefix, merge and write ``out`` atomically.

    Writes ``{'state_dict': ..., 'meta': {...}}``; returns the meta. ``merge`` lists files written
    by this function (typically with another prefix); their tensors are added as they are, and a
    key present twice is an error. ``depth=None`` infers 18 or 50 from the keys.
    """
    checkpoint = load_checkpoint_file(src, allow_pickle=allow_pickle)
    if layout == 'auto':
        layout = detect_layout(checkpoint, src)
        print_log(f'{src}: detected the {layout} layout', logger='current')
    if layout not in CONVERTERS:
        raise ValueError(f'unknown layout {layout!r}; expected "auto" or one of {sorted(CONVERTERS)}')
    state_dict = CONVERTERS[layout](checkpoint, src)
    print_log(f'{src}: the {layout} backbone has {len(state_dict)} tensors (other networks, heads '
              'and fc.* left out)', logger='current')
    filled = fill_num_batches_tracked(state_dict)
    if depth is None:
        depth = infer_depth(state_dict)
        print_log(f'{src}: ResNet-{depth} (inferred from its keys)', logger='current')
    backbone_size = len(state_dict)
    state_dict = check_backbone(state_dict, depth, num_stages, src)
    print_log(f'{src}: {len(state_dict)} tensors fit ResNet-{depth} with {num_stages} stages: '
              'no missing, unexpected or mis-shaped keys'
              + (f'; dropped {backbone_size - len(state_dict)} layer4 tensors' if num_stages == 3 else '')
              + (f'; {filled} BN num_batches_tracked counters set to 0' if filled else ''),
              logger='current')
    fused = {prefix + key: value for key, value in state_dict.items()}

    for other in merge:
        other_state = extract_state_dict(load_checkpoint_file(other), other)
        clashes = sorted(set(other_state) & set(fused))
        if clashes:
            raise ValueError(f'{other}: {len(clashes)} keys are already present (use a different '
                             f'--prefix for each network): {clashes[:10]}')
        fused.update(other_state)
        print_log(f'{other}: merged {len(other_state)} tensors', logger='current')

    padding_mode = PADDING_MODES.get(layout, 'zeros')
    if padding_mode != 'zeros':
        print_log(f'{src}: the {layout} network was trained with {padding_mode} padding: configs that '
                  f"load {out} must build ResNet(..., padding_mode='{padding_mode}')", logger='current',
                  level=logging.WARNING)
    meta = dict(source=os.path.abspath(src), layout=layout, depth=depth, num_stages=num_stages,
                padding_mode=padding_mode, prefix=prefix, merged=[os.path.abspath(other) for other in merge],
                converter=f'sfc_plugin {__version__} tools/convert_checkpoint.py')
    with atomic_path(out) as tmp:
        torch.save(dict(state_dict=fused, meta=meta), tmp)
    print_log(f'wrote {out} ({len(fused)} tensors)', logger='current')
    return meta
