"""Label propagation: the one core (settings, tiled memory, exact and two-stage top-k, the step, the streaming
state machine), its dense reference, the per-task label codecs and the one video loop over them."""
from .codecs import KeypointCodec, LabelCodec, MaskCodec, label_values_of
from .geometry import TileGeometry, default_tile_size, disk_reach, within_radius
from .labels import feature_size, mask_to_soft_labels, network_input_size, soft_labels_to_ids
from .memory import ContextMemory
from .reference import ReferencePropagator, reference_propagate_step, topk_boundary_gaps
from .settings import PropagationSettings, SelectDType, resolve_select_dtype
from .step import PropagationStep, propagate_step
from .streaming import (ContextStore, DenseContext, ExportedStepPropagator, Propagator, StreamingPropagator,
                        TiledContext, TiledPropagator)
from .video import VideoLabelLoop
from .window import ContextWindow

__all__ = [
    'ContextMemory', 'ContextStore', 'ContextWindow', 'default_tile_size', 'DenseContext', 'disk_reach',
    'ExportedStepPropagator', 'feature_size', 'KeypointCodec', 'label_values_of', 'LabelCodec',
    'mask_to_soft_labels', 'MaskCodec', 'network_input_size', 'propagate_step', 'PropagationSettings',
    'PropagationStep', 'Propagator', 'reference_propagate_step', 'ReferencePropagator', 'resolve_select_dtype',
    'SelectDType', 'soft_labels_to_ids', 'StreamingPropagator', 'TiledContext', 'TiledPropagator', 'TileGeometry',
    'topk_boundary_gaps', 'VideoLabelLoop', 'within_radius'
]
