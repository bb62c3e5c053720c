from .data_preprocessor import TwoViewDataPreprocessor
from .fc import FC

__all__ = ['FC', 'TwoViewDataPreprocessor']
