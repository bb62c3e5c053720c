"""The one way this package opens an onnxruntime session (the export's verification and the runtime)."""
from typing import Optional, Sequence, Union


def onnxruntime_session(model: Union[str, bytes], providers: Optional[Sequence[Union[str, tuple]]] = None):
    """An onnxruntime session on a model file or serialized model (CPUExecutionProvider by default).

    ``providers``: names, or ``(name, options)`` pairs, best first.
    """
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(model, options, providers=providers or ['CPUExecutionProvider'])
