"""sfc_plugin: SFC (Semantic-Aware Fine-Grained Correspondence) for the OpenMMLab ecosystem."""
from . import registry
from .utils.checkpoint import register_mmengine_safe_globals
from .version import __version__

# mmengine stores its message hub (HistoryBuffer, numpy scalars) in checkpoints; make those
# checkpoints load with torch.load(weights_only=True), so that `--resume` works under torch >= 2.6.
register_mmengine_safe_globals()

__all__ = ['__version__']
