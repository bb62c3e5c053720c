from .colour import ViewsColorJitter, ViewsGaussianBlur, ViewsRandomGrayscale, moco_view_pipeline
from .formatting import PackTwoViewInputs
from .loading import LoadRGBImage
from .two_view import TwoViewRandomResizedCrop

__all__ = ['LoadRGBImage', 'TwoViewRandomResizedCrop', 'PackTwoViewInputs', 'ViewsColorJitter',
           'ViewsRandomGrayscale', 'ViewsGaussianBlur', 'moco_view_pipeline']
