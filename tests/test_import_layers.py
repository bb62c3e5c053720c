"""The package's dependency direction: a module imports only from its own subpackage and from lower layers.

The layers, lowest first (README, Layout); subpackages of one layer do not import each other:

0. ``version``, ``utils``: no dependency inside the package.
1. ``registry`` (mmengine's child registries), ``structures`` (the video sample shared by data, model, metrics).
2. ``propagation``: the label-propagation core, the per-task label codecs and the one video loop.
3. ``datasets``, ``evaluation``, ``engine``, ``generators``: data in, metrics out, training hooks, data makers.
4. ``models``: backbones, losses, the FC and evaluation models (the evaluation model runs the video loop).
5. ``apis``: what the tools run (config -> model, train, test, tuning).
6. ``correspondence``, ``deploy``: image pairs (``sfc-match``), ONNX / TensorRT export.
7. ``runtime``: ``sfc-propagate`` over torch, onnxruntime and TensorRT.
8. ``benchmarks``: measure anything.
"""
import ast
import os
import re
from typing import Iterator, List, Tuple

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'sfc_plugin')
LAYERS = [
    {'version', 'utils'},
    {'registry', 'structures'},
    {'propagation'},
    {'datasets', 'evaluation', 'engine', 'generators'},
    {'models'},
    {'apis'},
    {'correspondence', 'deploy'},
    {'runtime'},
    {'benchmarks'},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}


def package_modules() -> Iterator[Tuple[str, str]]:
    """(path, dotted module name) of every module of sfc_plugin."""
    for folder, _, files in os.walk(PACKAGE_DIR):
        for file in sorted(files):
            if file.endswith('.py'):
                path = os.path.join(folder, file)
                parts = ['sfc_plugin'] + os.path.relpath(path, PACKAGE_DIR)[:-3].split(os.sep)
                yield path, '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path: str, module: str) -> Iterator[Tuple[int, str]]:
    """(line, dotted name) of every import in a module, at any depth (function-level imports too)."""
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                yield node.lineno, '.'.join(base + ([node.module] if node.module else []))
            else:
                yield node.lineno, node.module


def subpackage(module: str) -> str:
    """'sfc_plugin.propagation.step' -> 'propagation' ('' for the package itself)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def test_every_subpackage_has_a_layer():
    names = {subpackage(module) for _, module in package_modules()} - {''}
    names -= {'assets'}  # data and the default model's config, never imported
    assert names - set(LAYER_OF) == set(), 'place the new subpackage in LAYERS (and the README)'


def layer_violations(path: str, module: str) -> List[str]:
    """The imports of one module against the layers, one line each."""
    source = subpackage(module)
    if source in ('', 'assets'):  # the package's __init__ registers everything
        return []
    problems = []
    for line, imported in imported_modules(path, module):
        target = subpackage(imported)
        if imported.split('.')[0] != 'sfc_plugin' or target in ('', source):
            continue
        if LAYER_OF[target] >= LAYER_OF[source]:
            problems.append(f'{os.path.basename(path)}:{line}: {source} (layer {LAYER_OF[source]}) imports '
                            f'{imported} (layer {LAYER_OF[target]})')
    return problems


def test_imports_follow_the_layers():
    problems = [problem for path, module in package_modules() for problem in layer_violations(path, module)]
    assert not problems, '\n'.join(problems)


def test_the_check_sees_relative_nested_and_sibling_imports(tmp_path):
    path = tmp_path / 'step.py'
    path.write_text('from ..models import MODELS\nfrom .geometry import TileGeometry\nfrom sfc_plugin.utils import io\n\n'
                    'def f():\n    from sfc_plugin.runtime import cli\n')
    module = 'sfc_plugin.propagation.step'
    assert sorted(imported_modules(str(path), module)) == [
        (1, 'sfc_plugin.models'), (2, 'sfc_plugin.propagation.geometry'), (3, 'sfc_plugin.utils'),
        (6, 'sfc_plugin.runtime')]
    assert [problem.split(': ')[0] for problem in layer_violations(str(path), module)] == ['step.py:1', 'step.py:6']
    path.write_text('from sfc_plugin.evaluation.functional import VOID_ID\n')  # a sibling of layer 3
    assert layer_violations(str(path), 'sfc_plugin.datasets.video_datasets') != []


def readme_layers() -> List[Tuple[int, str]]:
    """(layer, subpackage) of each row of README.md's Layout table, e.g. ``| 2 | `sfc_plugin/propagation/` | ...``."""
    readme = os.path.join(os.path.dirname(PACKAGE_DIR), 'README.md')
    rows = re.findall(r'^\| (\d+) \| `sfc_plugin/(\w+)(?:/|\.py)`', open(readme).read(), flags=re.MULTILINE)
    return [(int(layer), name) for layer, name in rows]


def test_the_readme_states_the_same_layers():
    stated = readme_layers()
    assert stated, "README.md's Layout table has no rows"
    assert sorted(stated) == sorted((LAYER_OF[name], name) for name in LAYER_OF), \
        'README.md Layout and LAYERS disagree'

