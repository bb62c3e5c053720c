from .dense_mlp import DenseMLPHead
from .pooled_projection import PooledProjectionHead

__all__ = ['DenseMLPHead', 'PooledProjectionHead']
