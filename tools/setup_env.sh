#!/usr/bin/env bash
# Set up everything sfc_plugin needs on a fresh machine, in ./.venv (CPU build of torch).
#   bash tools/setup_env.sh            # CPU machine (this project's CI)
#   TORCH_SPEC='torch==2.6.0' bash tools/setup_env.sh   # another torch build, e.g. CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first: the pinned CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build.
$PIP install -q "$TORCH_SPEC"
$PIP install -q -e '.[dev]'
# mmengine and mmcv-lite declare the GUI build opencv-python; both builds ship the same cv2
# folder, so keep exactly one owner: the headless build this package asks for.
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
  $PIP uninstall -q -y opencv-python opencv-python-headless
  $PIP install -q --no-deps "opencv-python-headless>=4.8"
fi
.venv/bin/python -c "import cv2, mmcv, mmengine, torch, onnxruntime, sfc_plugin; print('sfc_plugin', sfc_plugin.__version__, '| torch', torch.__version__, '| mmengine', mmengine.__version__, '| mmcv', mmcv.__version__, '| cv2', cv2.__version__, '| onnxruntime', onnxruntime.__version__)"
