from .fc_loss import FCLoss, fc_positive_mask
from .info_nce import InfoNCELoss, info_nce_logits

__all__ = ['FCLoss', 'fc_positive_mask', 'InfoNCELoss', 'info_nce_logits']
