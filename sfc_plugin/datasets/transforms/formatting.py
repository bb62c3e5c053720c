"""Packing of the two views into the model's input format."""
from typing import Dict

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from sfc_plugin.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackTwoViewInputs(BaseTransform):
    """Pack the output of ``TwoViewRandomResizedCrop`` for the FC model's data preprocessor.

    Returns ``dict(inputs, data_samples)``:

    - ``inputs``: uint8 tensor (2, 3, S, S), the two RGB views (not normalised; the data
      preprocessor converts and normalises them on the device).
    - ``data_samples``: ``BaseDataElement`` with the data field ``crop_boxes`` (float32 tensor
      (2, 4), one (x0, y0, x1, y1) row per view) and the metainfo ``img_path`` and ``ori_shape``.
    """

    def transform(self, results: Dict) -> Dict:
        views = np.stack(results['img'])  # (2, S, S, 3)
        inputs = torch.from_numpy(views).permute(0, 3, 1, 2).contiguous()  # (2, 3, S, S)
        data_sample = BaseDataElement(
            metainfo=dict(img_path=results['img_path'], ori_shape=results['ori_shape']),
            crop_boxes=torch.from_numpy(np.asarray(results['crop_boxes'], np.float32)))
        return dict(inputs=inputs, data_samples=data_sample)
