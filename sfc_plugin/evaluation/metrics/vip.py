"""VIP human-part propagation metric: mIoU over the 20 classes, as the VIP ``test_parsing.py``."""
from typing import List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from PIL import Image

from sfc_plugin.evaluation.functional import confusion_histogram, iou_from_histogram
from sfc_plugin.registry import METRICS
from sfc_plugin.structures import VIP_CLASSES
from sfc_plugin.utils import read_label_png
from sfc_plugin.utils.table import format_table


@METRICS.register_module()
class VIPMetric(BaseMetric):
    """mIoU of propagated part labels over VIP's 20 classes (background included), in percent.

    As the reference: one confusion histogram over every annotated frame of every video (frame 0
    included; the reference scores every frame it wrote), predictions resized to the annotation
    size with nearest neighbour (PIL) where the sizes differ, ground-truth pixels outside 0..19
    (e.g. 255) ignored; IoU per class = TP / (GT + predicted - TP); 'mIoU' is the nan-mean over
    the classes (a class absent from both ground truth and prediction is left out).

    ``process`` expects per video: ``video``, ``pred_ids`` (T, H, W) uint8 and ``anno_paths``
    (None for frames without ground truth).

    Args:
        num_classes: Number of part classes.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the metric names (none by default).
    """

    def __init__(self, num_classes: int = 20, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            video, anno_paths = sample['video'], sample['anno_paths']
            pred_ids = np.asarray(sample['pred_ids'])
            if len(pred_ids) != len(anno_paths):
                raise ValueError(f'video {video!r}: predictions for {len(pred_ids)} frames, '
                                 f'{len(anno_paths)} frames in the dataset')
            histogram = np.zeros((self.num_classes, self.num_classes + 1), np.int64)
            for pred, path in zip(pred_ids, anno_paths):
                if path is None:
                    continue
                gt, _ = read_label_png(path, require_indexed=False)
                if pred.shape != gt.shape:
                    pred = np.asarray(Image.fromarray(pred.astype(np.uint8)).resize(
                        (gt.shape[1], gt.shape[0]), Image.NEAREST))
                histogram += confusion_histogram(gt, pred, self.num_classes)
            self.results.append(dict(video=video, histogram=histogram))

    def compute_metrics(self, results: List[dict]) -> dict:
        histogram = sum(result['histogram'] for result in results)
        iou = 100 * iou_from_histogram(histogram)
        names = VIP_CLASSES if self.num_classes == len(VIP_CLASSES) else range(self.num_classes)
        print_log('\n' + format_table('VIP IoU per class (%)', ['class', 'IoU'],
                                      [[name, float(value)] for name, value in zip(names, iou)]),
                  logger='current')
        return {'mIoU': float(np.nanmean(iou))}
