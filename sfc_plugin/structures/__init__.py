"""Data structures shared by the datasets, the models and the metrics (layer 1, with the registry, above utils)."""
from .video_sample import (JHMDB_JOINTS, VIP_CLASSES, VOID_ID, VideoDataError, image_size, validate_video_sample)

__all__ = ['JHMDB_JOINTS', 'VIP_CLASSES', 'VOID_ID', 'VideoDataError', 'image_size', 'validate_video_sample']
