"""Checkpoints: safe loading (``weights_only=True`` by default, no silently ignored keys), where a checkpoint keeps
its tensors, and state-dict key surgery (prefixes, BatchNorm counters)."""
import os
from typing import Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn


class CheckpointMismatchError(RuntimeError):
    """A state dict does not fit a model: lists the missing, unexpected and mis-shaped keys."""

    def __init__(self, source: str, missing: List[str], unexpected: List[str],
                 mismatched: List[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f'{source} does not fit the model:']
        for title, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                            ('shape mismatches', mismatched)):
            if keys:
                shown = ', '.join(keys[:20]) + (f', ... ({len(keys) - 20} more)' if len(keys) > 20 else '')
                lines.append(f'  {len(keys)} {title}: {shown}')
        super().__init__('\n'.join(lines))


def register_mmengine_safe_globals() -> None:
    """Make mmengine's training checkpoints loadable with ``weights_only=True``.

    torch >= 2.6 loads with ``weights_only=True`` by default, which rejects what mmengine 0.10.7
    keeps in its message hub, so ``--resume`` fails. Two changes fix that without a full pickle:
    allow-list the plain data types involved (``HistoryBuffer`` and numpy arrays, dtypes and
    scalars; none of them can run code), and stop ``HistoryBuffer`` from pickling its class-level
    table of statistics functions (they pickle as ``getattr`` calls, which must never be
    allowed; ``HistoryBuffer.__setstate__`` re-registers the defaults on load anyway).
    """
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_state
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 loads full pickles by default
        return
    numpy_core = getattr(np, '_core', None) or np.core
    safe = [HistoryBuffer, np.ndarray, np.dtype, numpy_core.multiarray._reconstruct,
            numpy_core.multiarray.scalar]
    safe += [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64')]
    add_safe_globals(safe)


def _history_buffer_state(buffer) -> dict:
    """``HistoryBuffer`` state without the statistics functions (see above)."""
    state = dict(buffer.__dict__)
    state.pop('statistics_methods', None)
    return state


def load_checkpoint_file(path: str, allow_pickle: bool = False) -> dict:
    """Load a checkpoint file on the CPU.

    ``weights_only=True`` unless ``allow_pickle`` (an explicit user flag such as
    ``--unsafe-pickle``) asks for a full pickle, which can run arbitrary code: only for files
    you trust.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such checkpoint file')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=not allow_pickle)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        hint = ('' if allow_pickle else
                ' If the file holds more than tensors and you trust its source, pass the flag'
                ' that allows a full pickle (e.g. --unsafe-pickle).')
        raise RuntimeError(f'{path}: cannot load the checkpoint: {error}.{hint}') from error
    if not isinstance(checkpoint, Mapping):
        raise RuntimeError(f'{path}: expected a dict of tensors, got {type(checkpoint).__name__}')
    return dict(checkpoint)


def extract_state_dict(checkpoint: Mapping, source: str) -> Dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: its ``state_dict`` or ``model`` entry, or itself."""
    for top_key in ('state_dict', 'model'):
        if top_key in checkpoint:
            state_dict = checkpoint[top_key]
            break
    else:
        state_dict = checkpoint
    if not isinstance(state_dict, Mapping):
        raise RuntimeError(f'{source}: expected a dict of tensors, got {type(state_dict).__name__}')
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise RuntimeError(f'{source}: expected a dict of tensors under "state_dict", "model" or '
                           f'at the top level; these entries are not tensors: {not_tensors[:10]}')
    return dict(state_dict)


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str = 'checkpoint',
                           allow_missing: Optional[List[str]] = None,
                           ignore_unexpected: Optional[List[str]] = None) -> Dict[str, List[str]]:
    """Load ``state_dict`` into ``model``; raise CheckpointMismatchError on any mismatch.

    ``allow_missing`` lists key prefixes that may legitimately be absent (e.g. a head that is
    trained from scratch); ``ignore_unexpected`` lists prefixes of checkpoint keys the model
    deliberately lacks (e.g. ``layer4.`` and ``fc.`` of a truncated ResNet). Both are returned so
    the caller can log them.
    """
    allow_missing = allow_missing or []
    ignore_unexpected = ignore_unexpected or []
    own = model.state_dict()
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    ignored = [key for key in unexpected if any(key.startswith(p) for p in ignore_unexpected)]
    unexpected = [key for key in unexpected if key not in ignored]
    mismatched = [
        f'{key} (checkpoint {tuple(state_dict[key].shape)} vs model {tuple(own[key].shape)})'
        for key in own if key in state_dict and tuple(state_dict[key].shape) != tuple(own[key].shape)
    ]
    fatal_missing = [key for key in missing if not any(key.startswith(p) for p in allow_missing)]
    if fatal_missing or unexpected or mismatched:
        raise CheckpointMismatchError(source, fatal_missing, unexpected, mismatched)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
    return dict(missing=missing, ignored=ignored)


def load_model_weights(model: nn.Module, path: str, allow_pickle: bool = False) -> None:
    """Load a checkpoint file's tensors (:func:`extract_state_dict`) strictly into ``model``."""
    load_state_dict_strict(model, extract_state_dict(load_checkpoint_file(path, allow_pickle), path), source=path)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str,
                 source: str) -> Dict[str, torch.Tensor]:
    """Keep the keys that start with ``prefix``, without it; raise if there are none."""
    stripped = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not stripped:
        sample = ', '.join(list(state_dict)[:8])
        raise RuntimeError(f'{source}: no key starts with the prefix {prefix!r} '
                           f'(the checkpoint has {len(state_dict)} keys, e.g. {sample})')
    return stripped


def fill_num_batches_tracked(state_dict: Dict[str, torch.Tensor]) -> int:
    """Add ``num_batches_tracked = 0`` beside every BN ``running_mean`` that lacks it, in place.

    Checkpoints saved before PyTorch 0.4.1 (e.g. torchvision's original resnet50-19c8e357.pth)
    have no such counter; it only matters for BN layers with ``momentum=None``, which no network
    here uses. Returns how many counters were added.
    """
    added = 0
    for key in list(state_dict):
        if key.endswith('running_mean'):
            counter = key[:-len('running_mean')] + 'num_batches_tracked'
            if counter not in state_dict:
                state_dict[counter] = torch.tensor(0, dtype=torch.long)
                added += 1
    return added
