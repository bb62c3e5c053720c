"""Label propagation: the one core (settings, tiled memory, exact and two-stage top-k, the step, the streaming
state machine), its dense reference, and label-map conversions."""
from .geometry import TileGeometry, default_tile_size, disk_reach, within_radius
from .labels import feature_size, mask_label_values, mask_to_soft_labels, network_input_size, soft_labels_to_ids
from .memory import ContextMemory
from .reference import ReferencePropagator, reference_propagate_step, topk_boundary_gaps
from .settings import PropagationSettings, SelectDType, resolve_select_dtype
from .step import PropagationStep, propagate_step
from .streaming import (ContextStore, DenseContext, LabelPropagator, Propagator, StreamingPropagator, TiledContext,
                        exported_step_propagator)
from .window import ContextWindow

__all__ = [
    'ContextMemory', 'ContextStore', 'ContextWindow', 'DenseContext', 'LabelPropagator', 'PropagationSettings',
    'PropagationStep', 'Propagator', 'ReferencePropagator', 'SelectDType', 'StreamingPropagator', 'TiledContext',
    'TileGeometry', 'default_tile_size', 'disk_reach', 'exported_step_propagator', 'feature_size',
    'mask_label_values', 'mask_to_soft_labels', 'network_input_size', 'propagate_step', 'reference_propagate_step',
    'resolve_select_dtype', 'soft_labels_to_ids', 'topk_boundary_gaps', 'within_radius'
]
