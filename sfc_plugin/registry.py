"""Registries of sfc_plugin, children of mmengine's root registries.

Every component the plugin builds from a config is registered here under the scope ``sfc_plugin``,
the package's name (the OpenMMLab convention, as mmpretrain's scope is ``mmpretrain``): when mmengine
switches to a scope it imports ``<scope>.registry``, which is this module. Configs select the scope
with ``default_scope='sfc_plugin'`` or, from another codebase, write ``type='sfc_plugin.Name'`` after
``custom_imports=dict(imports=['sfc_plugin'])``. Configs saved by earlier versions (the scope ``sfc``,
renamed keys) are read through ``upgrade_legacy_config`` (``LEGACY_SCOPES``, ``LEGACY_KEYS``).
"""
import logging
from typing import Any

from mmengine.logging import print_log
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'sfc_plugin'
# Former scope names: configs saved under them are read with upgrade_legacy_config.
LEGACY_SCOPES = ('sfc',)
# (model type, former argument) -> its name now
LEGACY_KEYS = {('PropagationModel', 'propagator'): 'propagation'}

# Backbones, heads, losses, self-supervised and propagation models, data preprocessors.
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['sfc_plugin.models'])
# Model wrappers (DDP and friends come from mmengine).
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope=SCOPE, locations=['sfc_plugin.models'])
# Weight initialisers used by ``init_cfg``.
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, scope=SCOPE,
    locations=['sfc_plugin.models'])

# Training image datasets and the DAVIS-2017, JHMDB and VIP evaluation datasets.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope=SCOPE, locations=['sfc_plugin.datasets'])
# Data samplers (mmengine's).
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, scope=SCOPE, locations=['sfc_plugin.datasets'])
# Collate functions (one video per sample for label propagation).
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, scope=SCOPE, locations=['sfc_plugin.datasets'])
# Data transforms: two-view crops, video loading and packing.
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE, locations=['sfc_plugin.datasets.transforms'])

# Evaluators and metrics (DAVIS J&F, JHMDB PCK, VIP mIoU).
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope=SCOPE, locations=['sfc_plugin.evaluation'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope=SCOPE, locations=['sfc_plugin.evaluation'])

# Training loops, hooks and optimisation (mmengine's, reachable from the sfc_plugin scope).
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope=SCOPE, locations=['sfc_plugin.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope=SCOPE, locations=['sfc_plugin.engine'])
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMENGINE_LOG_PROCESSORS, scope=SCOPE, locations=['sfc_plugin.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope=SCOPE, locations=['sfc_plugin.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE, locations=['sfc_plugin.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=['sfc_plugin.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope=SCOPE, locations=['sfc_plugin.engine'])

# Visualisation (mmengine's local visualiser and backends).
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, scope=SCOPE, locations=['sfc_plugin.engine'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, scope=SCOPE, locations=['sfc_plugin.engine'])


def _rename_legacy_types(node: Any, renamed: list) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            scope, dot, name = value.partition('.') if isinstance(value, str) else (None, '', None)
            if key == 'type' and dot and scope in LEGACY_SCOPES:
                node[key] = f'{SCOPE}.{name}'
                renamed.append(value)
            else:
                _rename_legacy_types(value, renamed)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _rename_legacy_types(value, renamed)


def _rename_legacy_keys(node: Any, renamed: list) -> None:
    if isinstance(node, dict):
        model_type = str(node.get('type', '')).rpartition('.')[2]
        for (owner, old), new in LEGACY_KEYS.items():
            if model_type == owner and old in node:
                node[new] = {**node.get(new, {}), **node.pop(old)}  # --cfg-options under either name merge
                renamed.append(f'{owner}.{old}')
        for value in node.values():
            _rename_legacy_keys(value, renamed)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _rename_legacy_keys(value, renamed)


def upgrade_legacy_config(cfg):
    """Read a config saved by an earlier version as one of this version, in place.

    - The scope was ``sfc`` before it became the package's name (``LEGACY_SCOPES``). A config written then (a
      work dir's dumped config, a config kept beside a checkpoint) says ``default_scope='sfc'`` and
      ``type='sfc.video_collate'``, ``type='sfc.StrictPretrained'``, ..., which mmengine can no longer resolve:
      ``default_scope`` becomes ``'sfc_plugin'`` and every ``type='sfc.Name'``, at any depth,
      ``type='sfc_plugin.Name'``.
    - Renamed arguments (``LEGACY_KEYS``): ``PropagationModel(propagator=...)`` is now ``propagation=``.

    Nothing else changes. The plugin's commands call it once, in ``sfc_plugin.apis.inference.load_config``, after
    ``--cfg-options`` are merged (an override under the old key merges into the new one). Returns ``cfg`` (an
    mmengine ``Config``).
    """
    renamed = []
    if cfg.get('default_scope') in LEGACY_SCOPES:
        renamed.append(f"default_scope='{cfg.default_scope}'")
        cfg.default_scope = SCOPE
    for key in list(cfg.keys()):
        _rename_legacy_types(cfg[key], renamed)
    scopes = sorted(set(renamed))
    keys = []
    for key in list(cfg.keys()):
        _rename_legacy_keys(cfg[key], keys)
    if scopes:
        print_log(f"config written under a former scope name ({', '.join(scopes)}): read as scope '{SCOPE}'",
                  logger='current', level=logging.WARNING)
    if keys:
        print_log(f"config with renamed arguments ({', '.join(sorted(set(keys)))}): read as "
                  f"{', '.join(sorted({f'{owner}.{new}' for (owner, _), new in LEGACY_KEYS.items()}))}",
                  logger='current', level=logging.WARNING)
    return cfg
