"""Registries of sfc_plugin, children of mmengine's root registries.

Every component the plugin builds from a config is registered here under the scope ``sfc``:
configs select it with ``default_scope='sfc'`` or, from another codebase, with ``type='sfc.Name'``
after ``custom_imports=dict(imports=['sfc_plugin'])``.
"""
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

SCOPE = 'sfc'

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

# Training loops, hooks and optimisation (mmengine's, reachable from the sfc scope).
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
