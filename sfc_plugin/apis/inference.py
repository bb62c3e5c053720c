"""Config (+ checkpoint) -> model, for every command that runs a trained model: ``tools/test.py``'s tuning,
``sfc-export``, ``sfc-propagate``'s torch backend and ``sfc-match``."""
import os
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from sfc_plugin.models.weight_init import init_weights_quietly
from sfc_plugin.registry import MODELS, SCOPE, upgrade_legacy_config
from sfc_plugin.utils import load_model_weights


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """A config file with ``cfg_options`` merged in; FileNotFoundError naming a missing file.

    tools/train.py, tools/test.py, sfc-export, sfc-propagate and sfc-match read configs here: one that was
    saved under the former scope ``sfc`` (a work dir's dumped config) is read as one of ``sfc_plugin``
    (``upgrade_legacy_config``).
    """
    if not os.path.isfile(config):
        raise FileNotFoundError(f'{config}: no such config file')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return upgrade_legacy_config(cfg)


def init_model(cfg: Config, model_cfg: dict, checkpoint: Optional[str] = None,
               allow_pickle: bool = False) -> torch.nn.Module:
    """Build ``model_cfg`` under the config's scope (as a Runner does: unprefixed types, e.g. an init_cfg's,
    resolve in it) and load ``checkpoint`` strictly, or let ``init_cfg`` initialise the weights; eval mode."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', SCOPE)):
        model = MODELS.build(model_cfg)
        if checkpoint is None:
            init_weights_quietly(model)
        else:
            load_model_weights(model, checkpoint, allow_pickle)
    return model.eval()


def build_model(config: str, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None,
                allow_pickle: bool = False) -> Tuple[torch.nn.Module, Config]:
    """The evaluation model of a config (a ``PropagationModel``) and the config.

    Without a checkpoint the config's ``init_cfg`` initialises the weights (as ``tools/test.py``).
    """
    cfg = load_config(config, cfg_options)
    model_cfg = cfg.get('model')
    if model_cfg is None or 'backbone' not in model_cfg or 'propagation' not in model_cfg:
        raise ValueError(f'{config}: model must be an evaluation model with a backbone and propagation '
                         f'settings (e.g. PropagationModel), got {model_cfg.get("type") if model_cfg else None}')
    return init_model(cfg, model_cfg, checkpoint, allow_pickle), cfg
