from .dense_mlp import DenseMLPHead

__all__ = ['DenseMLPHead']
