"""The fine-grained correspondence loss (docs/method.md section 2, paper eq. 4-6; PixPro's positive rule)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from sfc_plugin.registry import MODELS


def _cell_centres(boxes: torch.Tensor, size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor,
                                                                         torch.Tensor]:
    """Centres of a (h, w) feature grid in normalised image coordinates, and each view's bin diagonal.

    boxes: (B, 4) = (x0, y0, x1, y1), normalised by (W - 1, H - 1) of the original image; a
    horizontally flipped view has x0 > x1, so its bin width is negative and its cells run right
    to left. Returns x, y (B, h * w) in row-major cell order and the bin diagonal (B,).
    """
    h, w = size
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    bin_width = (x1 - x0) / w  # (B,)
    bin_height = (y1 - y0) / h
    cols = torch.arange(w, dtype=boxes.dtype, device=boxes.device) + 0.5
    rows = torch.arange(h, dtype=boxes.dtype, device=boxes.device) + 0.5
    centre_x = x0[:, None] + cols[None, :] * bin_width[:, None]  # (B, w)
    centre_y = y0[:, None] + rows[None, :] * bin_height[:, None]  # (B, h)
    batch = boxes.shape[0]
    centre_x = centre_x[:, None, :].expand(batch, h, w).reshape(batch, h * w)
    centre_y = centre_y[:, :, None].expand(batch, h, w).reshape(batch, h * w)
    return centre_x, centre_y, torch.sqrt(bin_width ** 2 + bin_height ** 2)


def fc_positive_mask(box1: torch.Tensor, box2: torch.Tensor, size1: Tuple[int, int],
                     size2: Tuple[int, int], radius: float = 0.5) -> torch.Tensor:
    """Positive pairs between two views' feature cells: (B, h1 * w1, h2 * w2) bool.

    Cell i of view 1 and cell j of view 2 are positive when the distance between their centres,
    in normalised coordinates of the original image, divided by the larger of the two views' bin
    diagonals, is below ``radius``. Boxes as in ``_cell_centres``; sizes are (h, w).
    """
    x1, y1, diag1 = _cell_centres(box1, size1)
    x2, y2, diag2 = _cell_centres(box2, size2)
    distance = torch.sqrt((x1[:, :, None] - x2[:, None, :]) ** 2 + (y1[:, :, None] - y2[:, None, :]) ** 2)
    return distance / torch.max(diag1, diag2)[:, None, None] < radius


@MODELS.register_module()
class FCLoss(nn.Module):
    """One direction of the FC loss: online predictions of one view against target projections
    of the other, on the cell pairs that ``fc_positive_mask`` calls positive.

    ``-2 * mean_b(sum(M * cos(p_i, z_j)) / (sum(M) + 1e-6)) * loss_weight``; the FC model adds
    both directions.

    Args:
        radius: positive radius r, in units of the larger bin diagonal (0.5 in SFC).
        loss_weight: factor on the loss.
    """

    def __init__(self, radius: float = 0.5, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.radius = radius
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, pred_boxes: torch.Tensor,
                target_boxes: torch.Tensor) -> torch.Tensor:
        """pred (B, C, h1, w1), target (B, C, h2, w2), boxes (B, 4) -> scalar loss.

        Features are L2-normalised over channels here, so raw head outputs can be passed.
        """
        mask = fc_positive_mask(pred_boxes, target_boxes, pred.shape[-2:], target.shape[-2:],
                                self.radius).float()
        pred = F.normalize(pred.flatten(2), dim=1)  # (B, C, h1 * w1)
        target = F.normalize(target.flatten(2), dim=1)  # (B, C, h2 * w2)
        # float32 sums even under mixed precision: up to (h * w)^2 terms per sample
        cosine = torch.bmm(pred.transpose(1, 2), target).float()  # (B, h1 * w1, h2 * w2)
        per_sample = (cosine * mask).sum(dim=(1, 2)) / (mask.sum(dim=(1, 2)) + 1e-6)
        return -2 * per_sample.mean() * self.loss_weight
