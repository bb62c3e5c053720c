"""InfoNCE: the contrastive loss of MoCo (He et al. 2020, eq. 1) against a queue of negatives."""
import torch
import torch.nn.functional as F
from torch import nn

from sfc_plugin.registry import MODELS


def info_nce_logits(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Logits ``[q.k, q.n_1, ..., q.n_K] / T``: the positive in column 0.

    Args:
        query: (B, D) query embeddings (L2-normalised).
        key: (B, D) positive keys, one per query (L2-normalised).
        negatives: (D, K) negative keys, one per column (MoCo's queue).
        temperature: T.

    Returns:
        (B, 1 + K) logits.
    """
    positive = (query * key).sum(dim=1, keepdim=True)  # (B, 1)
    negative = query @ negatives  # (B, K)
    return torch.cat([positive, negative], dim=1) / temperature


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """``-log( exp(q.k / T) / (exp(q.k / T) + sum_j exp(q.n_j / T)) )``, averaged over the batch.

    That is the cross-entropy of ``info_nce_logits`` against class 0, times ``loss_weight``.

    Args:
        temperature: T (MoCo v1: 0.07, MoCo v2: 0.2).
        loss_weight: factor of the loss.
    """

    def __init__(self, temperature: float = 0.07, loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'InfoNCELoss temperature must be > 0, got {temperature!r}')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, 1 + K) logits of ``info_nce_logits`` (positive in column 0) -> scalar loss."""
        targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        return self.loss_weight * F.cross_entropy(logits, targets)

    def logits(self, query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """``info_nce_logits`` at this loss's temperature: (B, D), (B, D), (D, K) -> (B, 1 + K)."""
        return info_nce_logits(query, key, negatives, self.temperature)
