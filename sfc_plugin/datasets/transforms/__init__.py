from .formatting import PackTwoViewInputs
from .loading import LoadRGBImage
from .two_view import TwoViewRandomResizedCrop

__all__ = ['LoadRGBImage', 'TwoViewRandomResizedCrop', 'PackTwoViewInputs']
