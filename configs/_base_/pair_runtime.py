# Runtime of the image-pair configs: the plugin's, plus the correspondence subpackage (its datasets,
# model, metric and collate function register on import).
_base_ = ['./default_runtime.py']
custom_imports = dict(imports=['sfc_plugin', 'sfc_plugin.correspondence'], allow_failed_imports=False)
