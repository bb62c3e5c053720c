"""The dense label propagation of the reference implementation, kept as the oracle of the core.

Every query is scored against all ``(m + 1) x h x w`` context keys (copies of the first frame are
materialised as real entries), keys outside the radius of restricted frames are set to -inf, then
top-k, softmax of ``values / temperature`` and the weighted sum of the keys' labels. Slow (about 10 s
per frame at DAVIS size on a 2-core CPU) and memory-hungry by design: tests and the benchmark only.
"""
from collections import deque
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def reference_propagate_step(query: Tensor,
                             long_feat: Tensor,
                             long_labels: Tensor,
                             short_feats: Sequence[Tensor],
                             short_labels: Sequence[Tensor],
                             num_first_copies: int = 0,
                             *,
                             topk: int = 15,
                             radius: float = 15.0,
                             temperature: float = 0.1,
                             radius_on_first: bool = False,
                             hard_labels: bool = False,
                             query_chunk: int = 1024) -> Tensor:
    """Dense propagation step with the arguments of :func:`.core.propagate_step`.

    query, long_feat: (C, h, w); long_labels: (K, h, w); short_feats / short_labels: n maps each.
    Returns (K, h, w) soft labels. ``query_chunk`` queries are scored at a time.
    """
    channels, height, width = query.shape
    cells = height * width
    # The context in the reference's order: long memory, then the short-term window.
    feats = [long_feat] + [long_feat] * num_first_copies + list(short_feats)
    labels = [long_labels] + [long_labels] * num_first_copies + list(short_labels)
    restricted = [radius_on_first] + [True] * (len(feats) - 1)
    keys = torch.stack(feats).flatten(2).transpose(1, 2)  # (F, hw, C)
    key_labels = torch.stack(labels).flatten(2).transpose(1, 2).reshape(len(feats) * cells, -1)  # (F hw, K)
    if hard_labels:
        key_labels = F.one_hot(key_labels.argmax(1), key_labels.shape[1]).to(key_labels.dtype)

    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    positions = torch.stack([rows.flatten(), cols.flatten()], 1).double().to(query.device)  # (hw, 2)
    queries = query.flatten(1).T  # (hw, C)
    predictions = []
    for start in range(0, cells, query_chunk):
        stop = min(start + query_chunk, cells)
        distance = (positions[start:stop, None] - positions[None]).square().sum(-1).sqrt()  # (q, hw)
        outside = distance >= radius
        affinity = torch.einsum('qc,fkc->qfk', queries[start:stop], keys)  # (q, F, hw)
        for frame, is_restricted in enumerate(restricted):
            if is_restricted:
                affinity[:, frame].masked_fill_(outside, float('-inf'))
        values, index = affinity.flatten(1).topk(topk, dim=1)
        weights = torch.softmax(values / temperature, dim=1)
        predictions.append((weights[..., None] * key_labels[index]).sum(1))  # (q, K)
    return torch.cat(predictions).T.reshape(-1, height, width)


class ReferencePropagator:
    """The reference protocol, streamed: a padded sequence of real entries, the last m of which
    (plus the annotated frame) predict the next frame. Arguments as :class:`.core.LabelPropagator`."""

    def __init__(self,
                 topk: int = 15,
                 context_len: int = 20,
                 radius: float = 15.0,
                 temperature: float = 0.1,
                 radius_on_first: bool = False,
                 hard_labels: bool = False,
                 pad_with_first: bool = True,
                 query_chunk: int = 1024) -> None:
        self.options = dict(topk=topk, radius=radius, temperature=temperature, radius_on_first=radius_on_first,
                            hard_labels=hard_labels, query_chunk=query_chunk)
        self.context_len = context_len
        self.pad_with_first = pad_with_first
        self.long: Optional[tuple] = None
        self.window: deque = deque(maxlen=context_len)

    def step(self, feat: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        if labels is not None:
            if self.long is None and self.pad_with_first:
                self.window.extend([(feat, labels)] * self.context_len)
            else:
                self.window.append((feat, labels))
            self.long = (feat, labels)
            return labels
        prediction = reference_propagate_step(feat, *self.long, [f for f, _ in self.window],
                                              [lab for _, lab in self.window], **self.options)
        self.window.append((feat, prediction))
        return prediction
