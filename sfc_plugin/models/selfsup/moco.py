"""MoCo v1/v2: momentum contrast between two augmented views of an image (He et al. 2020;
Chen et al. 2020), with an optional cross-instance cycle term on image pairs (Xiao et al. 2022)."""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_dist_info
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import nn

from sfc_plugin.registry import MODELS
from .momentum import momentum_copy, momentum_update_


@MODELS.register_module()
class MoCo(BaseModel):
    """Contrast a query view against its key view and a queue of earlier keys (InfoNCE).

    Query encoder: ``backbone`` -> ``head`` (``PooledProjectionHead``: global average pooling,
    linear (v1) or MLP (v2) to ``D`` channels) -> L2 normalisation. Key encoder: ``key_backbone``
    -> ``key_head``, a copy of the query encoder that takes no gradient; before the key forward of
    every training step its parameters move towards the query encoder's,
    ``theta_k <- m theta_k + (1 - m) theta_q`` (parameters only: its BatchNorm statistics come from
    its own forward passes, as in the reference code).

    Queue: the buffer ``queue`` (D, K) holds the keys of the last K / N steps (N keys per step: the
    batch of every process), L2-normalised random vectors at the start; ``queue_ptr`` is where the
    next keys go. After the loss, the step's keys (gathered from all processes under DDP) replace
    the oldest ones at the pointer, which advances by N modulo K; K must be a multiple of N, as the
    reference asserts. Both buffers are in the checkpoint, so ``--resume`` continues exactly.

    Shuffle BN: BatchNorm statistics of a batch leak which samples were batched together, and the
    query and its key would learn to find each other through them. The reference computes the keys
    on a batch shuffled across GPUs. Here the key batch of all processes is gathered, permuted,
    each process encodes its share, and the keys are gathered and put back in order. The
    permutation is drawn from ``numpy.random.default_rng([shuffle_seed, step])`` (``step``: the
    ``num_steps`` buffer), the same on every process and again after a resume. On one process,
    ``bn_splits > 1`` emulates several GPUs: the query batch is encoded in ``bn_splits`` chunks,
    each with its own BatchNorm statistics, and the key batch likewise after the permutation, so a
    key's statistics come from other samples than its query's. ``bn_splits=1`` on one process
    leaves BatchNorm statistics as they are (a permutation alone does not change them).

    Cross-instance cycle (optional): with ``cycle`` set, every data sample carries ``pair_images``
    (2, 3, P, P), a source and a target image normalised by the data preprocessor, and the losses
    of ``cycle(self.backbone, sources, targets)`` (query backbone, gradients flow) join MoCo's.

    Args:
        backbone: config of the query backbone (a registered backbone returning a feature map,
            e.g. ``ResNet`` or ``EfficientNetLite``).
        head: config of the projection (``PooledProjectionHead``); its ``out_channels`` is D.
        loss: config of the contrastive loss (``InfoNCELoss``, temperature T).
        queue_len: K, the number of negative keys (65536 in MoCo).
        momentum: m of the key encoder update (0.999 in MoCo).
        bn_splits: number of BatchNorm groups of each process's batch (see Shuffle BN).
        shuffle_seed: seed of the key shuffle permutations.
        cycle: config of a cross-instance cycle module (called as above), or None.
        data_preprocessor: config of the batch preprocessor (``TwoViewDataPreprocessor``).
        init_cfg: mmengine initialisation config (a backbone's own ``init_cfg`` loads ImageNet
            weights; ``init_weights`` then copies the query encoder into the key encoder).
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 loss: dict = dict(type='InfoNCELoss', temperature=0.07),
                 queue_len: int = 65536,
                 momentum: float = 0.999,
                 bn_splits: int = 1,
                 shuffle_seed: int = 0,
                 cycle: Optional[dict] = None,
                 data_preprocessor: Union[dict, nn.Module, None] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='TwoViewDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # built here so that it resolves in the sfc scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if queue_len < 1:
            raise ValueError(f'MoCo queue_len must be >= 1, got {queue_len}')
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'MoCo momentum must be in [0, 1], got {momentum}')
        if bn_splits < 1:
            raise ValueError(f'MoCo bn_splits must be >= 1, got {bn_splits}')
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.loss_module = MODELS.build(loss)
        self.cycle = MODELS.build(cycle) if cycle is not None else None
        self.queue_len = queue_len
        self.momentum = momentum
        self.bn_splits = bn_splits
        self.shuffle_seed = shuffle_seed

        self.key_backbone = momentum_copy(self.backbone)
        self.key_head = momentum_copy(self.head)
        feat_dim = self.head.out_channels
        self.register_buffer('queue', F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))

    def init_weights(self) -> None:
        """Initialise the query encoder (``init_cfg`` included), then copy it into the key encoder."""
        super().init_weights()
        self.key_backbone.load_state_dict(self.backbone.state_dict())
        self.key_head.load_state_dict(self.head.state_dict())

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` for every key encoder parameter."""
        momentum_update_((self.key_backbone, self.key_head), (self.backbone, self.head), self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write (N, D) keys into the queue at the pointer, over the oldest ones; advance it by N mod K."""
        num_keys = len(keys)
        if self.queue_len % num_keys:
            _, world_size = get_dist_info()
            raise ValueError(
                f'MoCo: queue_len {self.queue_len} must be a multiple of the keys enqueued per step, '
                f'{num_keys} (batch size x {world_size} processes), as in the reference code; change '
                'queue_len or the batch size')
        start = int(self.queue_ptr)
        self.queue[:, start:start + num_keys] = keys.t()
        self.queue_ptr.fill_((start + num_keys) % self.queue_len)

    def _encode(self, backbone: nn.Module, head: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D) L2-normalised embeddings, BatchNorm statistics per chunk of B / bn_splits."""
        if len(images) % self.bn_splits:
            raise ValueError(f'MoCo: the batch of {len(images)} does not split into bn_splits={self.bn_splits} '
                             'equal BatchNorm groups')
        embeddings = [head(backbone(chunk)) for chunk in images.chunk(self.bn_splits)]
        return F.normalize(torch.cat(embeddings), dim=1)

    def shuffle_permutation(self, num_images: int) -> torch.Tensor:
        """The key shuffle of the current step: a permutation of ``num_images`` (all processes' keys)."""
        rng = np.random.default_rng([self.shuffle_seed, int(self.num_steps)])
        return torch.from_numpy(rng.permutation(num_images))

    @torch.no_grad()
    def encode_keys(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Key embeddings of this process's (B, 3, S, S) key views with shuffle BN.

        Returns the (B, D) keys of this process's images and the (W * B, D) keys of all W
        processes' images in rank order (what goes into the queue).
        """
        rank, world_size = get_dist_info()
        batch_size = len(images)
        all_images = torch.cat(all_gather(images)) if world_size > 1 else images  # (W * B, 3, S, S)
        order = self.shuffle_permutation(len(all_images)).to(images.device)
        mine = order[rank * batch_size:(rank + 1) * batch_size]  # images this process encodes
        shuffled_keys = self._encode(self.key_backbone, self.key_head, all_images[mine])  # (B, D)
        if world_size > 1:
            shuffled_keys = torch.cat(all_gather(shuffled_keys))  # (W * B, D), row i: image order[i]
        all_keys = torch.empty_like(shuffled_keys)
        all_keys[order] = shuffled_keys
        return all_keys[rank * batch_size:(rank + 1) * batch_size], all_keys

    def extract_feat(self, images: torch.Tensor) -> torch.Tensor:
        """Query backbone features: (B, 3, H, W) -> (B, C, h, w)."""
        return self.backbone(images)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """``tensor``: query backbone features of (B, 3, H, W) images, or (B, 2, C, h, w) for
        (B, 2, 3, S, S) view pairs; ``loss``: the training losses of view pairs."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            if inputs.dim() == 5:
                return self.extract_feat(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])
            return self.extract_feat(inputs)
        raise ValueError(f'MoCo.forward: mode must be "tensor" or "loss", got {mode!r}')

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, torch.Tensor]:
        """InfoNCE of (B, 2, 3, S, S) normalised [query view, key view] pairs against the queue.

        Returns ``loss_moco``, ``accuracy_moco`` (share of queries whose positive has the largest
        logit; logged, not a loss) and, with ``cycle``, the cycle module's losses.
        """
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError(f'MoCo.loss expects (B, 2, 3, S, S) view pairs, got {tuple(inputs.shape)}')
        queries = self._encode(self.backbone, self.head, inputs[:, 0])  # (B, D)
        self.momentum_update()
        keys, all_keys = self.encode_keys(inputs[:, 1])  # (B, D), (W * B, D)

        logits = self.loss_module.logits(queries, keys, self.queue.clone().detach())  # (B, 1 + K)
        losses = dict(loss_moco=self.loss_module(logits))
        with torch.no_grad():
            losses['accuracy_moco'] = (logits.argmax(dim=1) == 0).float().mean()
        self.enqueue(all_keys)
        self.num_steps += 1

        if self.cycle is not None:
            if data_samples is None or any('pair_images' not in sample for sample in data_samples):
                raise ValueError('MoCo with a cycle term needs data_samples with a pair_images field '
                                 '(2, 3, P, P) per sample (source, target)')
            pairs = torch.stack([sample.pair_images for sample in data_samples])  # (B, 2, 3, P, P)
            losses.update(self.cycle(self.backbone, pairs[:, 0], pairs[:, 1]))
        return losses
