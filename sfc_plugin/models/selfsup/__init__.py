from .cycle import CrossInstanceCycle
from .data_preprocessor import TwoViewDataPreprocessor
from .fc import FC
from .moco import MoCo

__all__ = ['CrossInstanceCycle', 'FC', 'MoCo', 'TwoViewDataPreprocessor']
