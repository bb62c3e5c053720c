"""Image loading for the training pipelines."""
from typing import Dict

from mmcv.transforms import BaseTransform

from sfc_plugin.registry import TRANSFORMS
from sfc_plugin.utils import read_image


@TRANSFORMS.register_module()
class LoadRGBImage(BaseTransform):
    """Read ``results['img_path']`` as an RGB uint8 image.

    Adds ``img`` (H, W, 3) uint8 RGB, ``img_shape`` and ``ori_shape`` (both (H, W)). A missing,
    unreadable or corrupt file raises ``ImageReadError`` naming the file; the training datasets
    catch it, skip the file and count it (see ``UnlabelledImageDataset``).
    """

    def transform(self, results: Dict) -> Dict:
        image = read_image(results['img_path'])
        results['img'] = image
        results['img_shape'] = image.shape[:2]
        results['ori_shape'] = image.shape[:2]
        return results
