"""Every config under configs/ loads, names only registered types and builds its model (no weights
read); the registry scope is the package's name and works from other codebases; configs saved under
the former scope still load."""
import glob
import os
import subprocess
import sys
import textwrap

import mmengine.runner  # noqa: F401  (registers mmengine's loops, hooks, optimizers, as a Runner does)
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from conftest import REPO_ROOT
from sfc_plugin import registry
from sfc_plugin.registry import SCOPE, upgrade_legacy_config

CONFIGS = sorted(os.path.relpath(path, REPO_ROOT)
                 for path in glob.glob(os.path.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in path.split(os.sep))
DEFAULT_MODEL = os.path.join('sfc_plugin', 'assets', 'default_model.py')

# Where each top-level config key's `type`s are registered (nested keys: NESTED_REGISTRIES).
TOP_REGISTRIES = dict(
    model='MODELS', train_dataloader='DATASETS', val_dataloader='DATASETS', test_dataloader='DATASETS',
    test_evaluator='METRICS', val_evaluator='METRICS', train_cfg='LOOPS', val_cfg='LOOPS', test_cfg='LOOPS',
    optim_wrapper='OPTIM_WRAPPERS', param_scheduler='PARAM_SCHEDULERS', default_hooks='HOOKS',
    custom_hooks='HOOKS', visualizer='VISUALIZERS', vis_backends='VISBACKENDS')
NESTED_REGISTRIES = dict(init_cfg='WEIGHT_INITIALIZERS', sampler='DATA_SAMPLERS', collate_fn='FUNCTIONS',
                         dataset='DATASETS', pipeline='TRANSFORMS', optimizer='OPTIMIZERS',
                         vis_backends='VISBACKENDS')


def _types(node, registry_name, found):
    """(registry name, type) of every ``type`` in ``node``, the registry chosen by the enclosing key."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            found.append((registry_name, node['type']))
        for key, value in node.items():
            _types(value, NESTED_REGISTRIES.get(key, registry_name), found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _types(value, registry_name, found)
    return found


def _no_pretrained(node):
    """``node`` with every ``pretrained=True`` set to False (no weight file is read while building)."""
    if isinstance(node, dict):
        return {key: False if key == 'pretrained' else _no_pretrained(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_no_pretrained(value) for value in node)
    return node


def test_every_config_is_found():
    assert len(CONFIGS) >= 40
    assert {path.split(os.sep)[1] for path in CONFIGS} == {'fc', 'sfc', 'vos_benchmark', 'pair', 'moco', 'cats', 'semimatch'}


@pytest.mark.parametrize('path', CONFIGS + [DEFAULT_MODEL])
def test_config_types_resolve_and_model_builds(path):
    cfg = Config.fromfile(os.path.join(REPO_ROOT, path))  # imports custom_imports (sfc_plugin, ...)
    if path != DEFAULT_MODEL:  # the shipped default model is a model only; configs/ set the runtime
        assert cfg.default_scope == SCOPE
    found = []
    for key, registry_name in TOP_REGISTRIES.items():
        _types(cfg.get(key), registry_name, found)
    assert any(name == 'MODELS' for name, _ in found), path
    with DefaultScope.overwrite_default_scope(SCOPE):
        for registry_name, type_name in found:
            assert getattr(registry, registry_name).get(type_name) is not None, (path, registry_name, type_name)
        # built without reading weights (init_cfg acts only in init_weights): well under a second each
        model = registry.MODELS.build(_no_pretrained(cfg.model.to_dict()))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_base_models_hold_each_model_once():
    """configs/_base_/models/ is the one home of model definitions: no concrete config sets a model
    ``type`` of its own (they are _base_ plus overrides; an override may restate a backbone's type)."""
    for path in CONFIGS:
        text = open(os.path.join(REPO_ROOT, path)).read()
        assert "type='PropagationModel'" not in text and "type='PairMatchingModel'" not in text, path
        assert "type='FC'" not in text and "type='MoCo'" not in text, path
        assert "type='CATsMatchingModel'" not in text, path
    assert glob.glob(os.path.join(REPO_ROOT, 'configs', '*', '_base_')) == []


def test_scope_is_the_package_name():
    import sfc_plugin
    assert SCOPE == sfc_plugin.__name__ == 'sfc_plugin'
    assert 'sfc' not in sys.modules or sys.modules['sfc'] is not sfc_plugin  # no alias module


@pytest.mark.slow
def test_built_from_another_codebase_with_custom_imports(tmp_path):
    """A config of another codebase (default_scope 'mmengine') reaches the plugin through custom_imports
    and scoped types, in a fresh interpreter that has not imported sfc_plugin."""
    config = tmp_path / 'other_codebase.py'
    config.write_text(textwrap.dedent("""\
        default_scope = 'mmengine'
        custom_imports = dict(imports=['sfc_plugin'], allow_failed_imports=False)
        model = dict(
            type='sfc_plugin.PropagationModel',
            backbone=dict(type='sfc_plugin.SFCBackbone',
                          fine_grained=dict(type='sfc_plugin.ResNet', depth=18, strides=(1, 2, 1), num_stages=3)),
            propagation=dict(topk=5, context_len=4, radius=6, temperature=0.05))
        """))
    code = textwrap.dedent(f"""\
        import sys
        from mmengine.config import Config
        from mmengine.registry import MODELS, init_default_scope
        assert 'sfc_plugin' not in sys.modules
        cfg = Config.fromfile({str(config)!r})
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.model)
        print(type(model).__module__, type(model).__name__, type(model.backbone.fine_grained).__name__)
        """)
    result = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    module, model, branch = result.stdout.split()
    assert module.startswith('sfc_plugin.') and (model, branch) == ('PropagationModel', 'ResNet')


def test_configs_saved_under_the_former_scope_still_load(tmp_path):
    """A work dir's config dumped before the rename (default_scope 'sfc', types 'sfc.X') is read as the
    same config under 'sfc_plugin'; everything else is left as it is."""
    current = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py'))
    current.model.backbone.fine_grained.init_cfg = dict(type='sfc_plugin.StrictPretrained', checkpoint='x.pth')
    old_text = current.pretty_text.replace("default_scope = 'sfc_plugin'", "default_scope = 'sfc'").replace(
        "type='sfc_plugin.", "type='sfc.")
    assert "default_scope = 'sfc'" in old_text and "type='sfc.video_collate'" in old_text
    saved = tmp_path / 'saved_config.py'
    saved.write_text(old_text)
    old = Config.fromfile(str(saved))
    assert old.default_scope == 'sfc' and old.model.backbone.fine_grained.init_cfg.type == 'sfc.StrictPretrained'
    assert old.custom_imports.imports == ['sfc_plugin']  # the package name was always the import
    assert upgrade_legacy_config(old) is old
    assert old.to_dict() == current.to_dict()
    assert upgrade_legacy_config(Config(dict(model=dict(type='sfcnet.X'), a='sfc.x'))).to_dict() == dict(
        model=dict(type='sfcnet.X'), a='sfc.x')  # only the scope prefix of a `type`, nothing else


def test_tools_read_configs_of_the_former_scope_through_the_one_upgrade(tmp_path):
    """tools/train.py and tools/test.py map the former scope after --cfg-options are merged."""
    from sfc_plugin.apis.train_test import build_test_config, test_arg_parser
    saved = tmp_path / 'saved_config.py'
    saved.write_text("default_scope = 'sfc'\nmodel = dict(type='sfc.PropagationModel')\n")
    cfg = build_test_config(test_arg_parser().parse_args(
        [str(saved), '--work-dir', str(tmp_path), '--cfg-options', 'test_cfg.type=sfc.TestLoop']))
    assert cfg.default_scope == SCOPE
    assert cfg.model.type == 'sfc_plugin.PropagationModel' and cfg.test_cfg.type == 'sfc_plugin.TestLoop'


def test_a_model_saved_under_the_former_scope_builds_in_the_commands(tmp_path):
    """sfc-export, sfc-propagate --config and sfc-match build such a config (apis.inference), with a
    scoped init_cfg, as before the rename."""
    import torch

    from sfc_plugin.apis.inference import build_model
    from sfc_plugin.models import ResNet
    checkpoint = tmp_path / 'branch.pth'
    branch = ResNet(depth=18, strides=(1, 2, 1), num_stages=3)
    torch.save({'state_dict': {f'backbone.fine_grained.{k}': v for k, v in branch.state_dict().items()}}, checkpoint)
    saved = tmp_path / 'saved_config.py'
    saved.write_text(textwrap.dedent(f"""\
        default_scope = 'sfc'
        custom_imports = dict(imports=['sfc_plugin'], allow_failed_imports=False)
        model = dict(
            type='sfc.PropagationModel',
            backbone=dict(type='SFCBackbone', fine_grained=dict(
                type='ResNet', depth=18, strides=(1, 2, 1), num_stages=3,
                init_cfg=dict(type='sfc.StrictPretrained', checkpoint={str(checkpoint)!r},
                              prefix='backbone.fine_grained.'))),
            propagator=dict(topk=5, context_len=4, radius=6, temperature=0.05))
        """))
    model, cfg = build_model(str(saved), cfg_options={'model.propagator.topk': 7})
    assert cfg.default_scope == SCOPE and type(model).__name__ == 'PropagationModel'
    # the former argument `propagator` is read as `propagation`, an override under the old name merged in
    assert 'propagator' not in cfg.model and cfg.model.propagation.context_len == 4
    assert (model.settings.topk, model.settings.context_len, model.settings.radius) == (7, 4, 6)
    for key, value in branch.state_dict().items():
        assert torch.equal(model.backbone.fine_grained.state_dict()[key], value), key
