"""The video-propagation runtime behind ``sfc-propagate``: frame readers and mask writers, the torch /
onnxruntime / tensorrt backends, the streaming :class:`VideoPropagator`, resumable runs and batch mode."""
from .backends import (Backend, ModelNotFoundError, OnnxRuntimeBackend, TensorRTBackend, TorchBackend, default_model,
                       load_backend)
from .batch import Job, JobListError, read_job_list, run_batch
from .masks import Annotations, MaskError, load_annotations
from .pipeline import propagate_video
from .propagator import VideoPropagator
from .resume import ResumeError, RunState, resume_plan
from .video_io import FrameSource, OutputError, VideoReadError

__all__ = [
    'Annotations', 'Backend', 'FrameSource', 'Job', 'JobListError', 'MaskError', 'ModelNotFoundError',
    'OnnxRuntimeBackend', 'OutputError', 'ResumeError', 'RunState', 'TensorRTBackend', 'TorchBackend',
    'VideoPropagator', 'VideoReadError', 'default_model', 'load_annotations', 'load_backend',
    'propagate_video', 'read_job_list', 'resume_plan', 'run_batch'
]
