"""Deployment: ONNX export of the fused backbone and the propagation step, FP16 graphs, a TensorRT
compatibility check, TensorRT engines, and the export folder's meta.json."""
from .fp16 import convert_to_fp16
from .meta import ExportFormatError, ExportMeta, load_export_meta
from .onnx_export import ExportError, ExportOptions, check_image_size, export_onnx
from .onnxruntime_session import onnxruntime_session
from .tensorrt_engine import (EngineMismatchError, TensorRTEngine, TensorRTUnavailableError, build_engine,
                              build_export_engines, cuda_device, tensorrt_version)
from .trt_compat import CompatibilityReport, check_tensorrt_compatibility

__all__ = [
    'CompatibilityReport', 'EngineMismatchError', 'ExportError', 'ExportFormatError', 'ExportMeta', 'ExportOptions',
    'TensorRTEngine', 'TensorRTUnavailableError', 'build_engine', 'build_export_engines', 'check_image_size',
    'check_tensorrt_compatibility', 'convert_to_fp16', 'cuda_device', 'export_onnx', 'load_export_meta',
    'onnxruntime_session', 'tensorrt_version'
]
