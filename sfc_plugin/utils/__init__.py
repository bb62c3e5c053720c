from .checkpoint import (CheckpointMismatchError, load_checkpoint_file, load_model_weights,
                         load_state_dict_strict, register_mmengine_safe_globals)
from .io import (IMAGE_EXTENSIONS, ImageReadError, atomic_folder, atomic_path, file_sha256, image_tensor,
                 prepare_image, problems_summary, read_image, read_json, read_label_png, write_json,
                 write_label_png)

__all__ = [
    'CheckpointMismatchError', 'load_checkpoint_file', 'load_model_weights', 'load_state_dict_strict',
    'register_mmengine_safe_globals', 'IMAGE_EXTENSIONS', 'ImageReadError', 'atomic_folder', 'atomic_path',
    'file_sha256', 'image_tensor', 'prepare_image', 'problems_summary', 'read_image', 'read_json', 'read_label_png',
    'write_json', 'write_label_png'
]
