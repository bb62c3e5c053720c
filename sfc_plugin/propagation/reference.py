"""The dense label propagation of the reference implementation, kept as the oracle of the core.

Every query is scored against all ``(m + 1) x h x w`` context keys (copies of the first frame are
materialised as real entries), keys outside the radius of restricted frames are set to -inf, then
top-k, softmax of ``values / temperature`` and the weighted sum of the keys' labels. Slow (about 10 s
per frame at DAVIS size on a 2-core CPU) and memory-hungry by design: tests and the benchmark only.
"""
import math
from collections import deque
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import within_radius
from .labels import lift_diluted_objects
from .settings import PropagationSettings


def _context_affinity(queries: Tensor, query_cells: Tensor, keys: Tensor, restricted: List[bool], width: int,
                      radius: float) -> Tensor:
    """Affinities (q, F, hw) of queries (q, C) at the flat cells ``query_cells`` (q,) with every context key
    (F, hw, C); -inf for the keys of ``restricted`` frames outside the radius."""
    key_cells = torch.arange(keys.shape[1], device=keys.device)
    outside = ~within_radius(query_cells[:, None] // width - key_cells // width,
                             query_cells[:, None] % width - key_cells % width, radius)  # (q, hw)
    affinity = torch.einsum('qc,fkc->qfk', queries, keys)
    for frame, is_restricted in enumerate(restricted):
        if is_restricted:
            affinity[:, frame].masked_fill_(outside, -math.inf)
    return affinity


@torch.no_grad()
def reference_propagate_step(query: Tensor,
                             long_feat: Tensor,
                             long_labels: Tensor,
                             short_feats: Sequence[Tensor],
                             short_labels: Sequence[Tensor],
                             num_first_copies: int = 0,
                             settings: Optional[PropagationSettings] = None,
                             query_chunk: int = 1024) -> Tensor:
    """Dense propagation step with the arguments of :func:`.step.propagate_step`.

    query, long_feat: (C, h, w); long_labels: (K, h, w); short_feats / short_labels: n maps each.
    Returns (K, h, w) soft labels. ``query_chunk`` queries are scored at a time.
    """
    s = settings if settings is not None else PropagationSettings()
    channels, height, width = query.shape
    cells = height * width
    # The context in the reference's order: long memory, then the short-term window.
    feats = [long_feat] + [long_feat] * num_first_copies + list(short_feats)
    labels = [long_labels] + [long_labels] * num_first_copies + list(short_labels)
    restricted = [s.radius_on_first] + [True] * (len(feats) - 1)
    keys = torch.stack(feats).flatten(2).transpose(1, 2)  # (F, hw, C)
    key_labels = torch.stack(labels).flatten(2).transpose(1, 2).reshape(len(feats) * cells, -1)  # (F hw, K)
    if s.hard_labels:
        key_labels = F.one_hot(key_labels.argmax(1), key_labels.shape[1]).to(key_labels.dtype)

    queries = query.flatten(1).T  # (hw, C)
    predictions = []
    for start in range(0, cells, query_chunk):
        query_cells = torch.arange(start, min(start + query_chunk, cells), device=query.device)
        affinity = _context_affinity(queries[query_cells], query_cells, keys, restricted, width, s.radius)
        values, index = affinity.flatten(1).topk(s.topk, dim=1)
        weights = torch.softmax(values / s.temperature, dim=1)
        predictions.append((weights[..., None] * key_labels[index]).sum(1))  # (q, K)
    return torch.cat(predictions).T.reshape(-1, height, width)


def topk_boundary_gaps(query: Tensor, context_feats: Tensor, cells: Tensor, settings: PropagationSettings) -> Tensor:
    """For the query cells ``cells`` (flat indices), the gap between the k-th and (k+1)-th largest
    affinity over the context keys (m + 1, C, h, w) each may use. A gap near zero is a tie at the top-k
    boundary: either key is a correct choice, and two correct implementations may blend different labels.
    """
    width = query.shape[2]
    keys = context_feats.flatten(2).transpose(1, 2)  # (m + 1, hw, C)
    restricted = [settings.radius_on_first] + [True] * (len(keys) - 1)
    affinity = _context_affinity(query.flatten(1).T[cells], cells, keys, restricted, width, settings.radius)
    top = affinity.flatten(1).topk(settings.topk + 1, dim=1).values
    return top[:, settings.topk - 1] - top[:, settings.topk]


class ReferencePropagator:
    """The reference protocol, streamed: a padded sequence of real entries, the last m of which
    (plus the annotated frame) predict the next frame. Settings as :class:`.streaming.TiledPropagator`."""

    def __init__(self, settings: Optional[PropagationSettings] = None, query_chunk: int = 1024) -> None:
        self.settings = settings if settings is not None else PropagationSettings()
        self.query_chunk = query_chunk
        self.long: Optional[tuple] = None
        self.window: deque = deque(maxlen=self.settings.context_len)

    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        if labels is not None:
            if self.long is None and self.settings.pad_with_first:
                self.window.extend([(feat, labels)] * self.settings.context_len)
            else:
                self.window.append((feat, labels))
            self.long = (feat, labels)
            return labels
        prediction = reference_propagate_step(feat, *self.long, [f for f, _ in self.window],
                                              [lab for _, lab in self.window], settings=self.settings,
                                              query_chunk=self.query_chunk)
        if self.settings.dilution_gain > 1:
            prediction = lift_diluted_objects(prediction, self.settings.dilution_gain)
        self.window.append((feat, prediction))
        return prediction
