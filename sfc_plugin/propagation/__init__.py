"""Label propagation: the streaming core, its dense reference, and label-map conversions."""
from .core import (ContextMemory, LabelPropagator, PropagationSettings, PropagationStep, propagate_step,
                   resolve_select_dtype)
from .geometry import TileGeometry, default_tile_size, disk_reach
from .labels import feature_size, mask_label_values, mask_to_soft_labels, soft_labels_to_ids
from .reference import ReferencePropagator, reference_propagate_step
from .window import ContextWindow

__all__ = [
    'ContextMemory', 'ContextWindow', 'LabelPropagator', 'PropagationSettings', 'PropagationStep', 'ReferencePropagator',
    'TileGeometry', 'default_tile_size', 'disk_reach', 'feature_size', 'mask_label_values', 'mask_to_soft_labels',
    'propagate_step', 'reference_propagate_step', 'resolve_select_dtype', 'soft_labels_to_ids'
]
