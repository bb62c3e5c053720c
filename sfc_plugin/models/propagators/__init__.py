from .propagation_model import PropagationModel

__all__ = ['PropagationModel']
