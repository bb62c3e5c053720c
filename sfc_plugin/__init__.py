"""sfc_plugin: SFC (Semantic-Aware Fine-Grained Correspondence) for the OpenMMLab ecosystem."""
import sys

from . import registry
from .utils.checkpoint import register_mmengine_safe_globals
from .version import __version__

# mmengine imports `<default_scope>.registry` when it switches to a scope; our scope is 'sfc', so
# make that name resolve to this package's registry (unless a real `sfc` package is loaded).
if 'sfc' not in sys.modules:
    sys.modules['sfc'] = sys.modules[__name__]
    sys.modules['sfc.registry'] = registry

# mmengine stores its message hub (HistoryBuffer, numpy scalars) in checkpoints; make those
# checkpoints load with torch.load(weights_only=True), so that `--resume` works under torch >= 2.6.
register_mmengine_safe_globals()

__all__ = ['__version__']
