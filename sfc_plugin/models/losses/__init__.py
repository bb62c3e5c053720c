from .fc_loss import FCLoss, fc_positive_mask

__all__ = ['FCLoss', 'fc_positive_mask']
