from .train_test import build_test_config, build_train_config, test, train

__all__ = ['build_test_config', 'build_train_config', 'test', 'train']
