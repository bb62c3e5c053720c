"""FC: fine-grained correspondence training (SFC paper section 3.2, docs/method.md section 2)."""
import math
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import nn

from sfc_plugin.registry import MODELS
from .momentum import momentum_copy, momentum_update_


@MODELS.register_module()
class FC(BaseModel):
    """BYOL-style dense self-supervision between two crops of one image.

    Online network: ``backbone`` -> ``projector`` -> ``predictor``; target network:
    ``target_backbone`` -> ``target_projector``, an exponential moving average (EMA) of the online
    backbone and projector that takes no gradient (so DDP never synchronises it). The loss pairs
    every online prediction of one view with the target projections of the other view at the
    positions ``FCLoss`` calls positive, in both directions.

    EMA momentum at step ``s`` of ``total``: ``m = 1 - (1 - base_momentum) * (cos(pi * s / total)
    + 1) / 2`` (0.99 -> 1), applied to the target parameters before the target forward of every
    training forward (one per ``loss`` call). ``total`` is the runner's ``max_iters`` (from
    mmengine's message hub), else ``total_iters``; ``s`` is kept in the ``ema_step`` buffer, so
    a checkpoint holds the target weights and the step and resuming continues the schedule
    exactly. Steps beyond ``total`` use m = 1. As in the reference code, the EMA covers
    parameters only: the target's BN running statistics come from its own forward passes.

    Args:
        backbone: config of the encoder (the FC ResNet-18 with strides (1, 2, 1, 1)).
        projector: config of the projector (``DenseMLPHead`` 512 -> 2048 -> 256).
        predictor: config of the predictor (``DenseMLPHead`` 256 -> 2048 -> 256).
        loss: config of the one-direction loss (``FCLoss``).
        base_momentum: EMA momentum at step 0.
        total_iters: length of the EMA schedule when no runner has recorded ``max_iters``.
        data_preprocessor: config of the batch preprocessor (``TwoViewDataPreprocessor``).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 projector: dict,
                 predictor: dict,
                 loss: dict = dict(type='FCLoss'),
                 base_momentum: float = 0.99,
                 total_iters: Optional[int] = None,
                 data_preprocessor: Union[dict, nn.Module, None] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='TwoViewDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # built here so that it resolves in the sfc scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.projector = MODELS.build(projector)
        self.predictor = MODELS.build(predictor)
        self.loss_module = MODELS.build(loss)
        self.base_momentum = base_momentum
        self.total_iters = total_iters

        self.target_backbone = momentum_copy(self.backbone)
        self.target_projector = momentum_copy(self.projector)
        self.register_buffer('ema_step', torch.zeros((), dtype=torch.long))

    def init_weights(self) -> None:
        """Initialise the online network (``init_cfg`` included), then copy it into the target."""
        super().init_weights()
        self.target_backbone.load_state_dict(self.backbone.state_dict())
        self.target_projector.load_state_dict(self.projector.state_dict())

    def total_steps(self) -> int:
        """Length of the EMA schedule: the runner's max_iters, else ``total_iters``."""
        max_iters = MessageHub.get_current_instance().get_info('max_iters')
        if max_iters:
            return int(max_iters)
        if self.total_iters:
            return int(self.total_iters)
        raise RuntimeError('FC needs the number of training iterations for its EMA schedule: run '
                           'it under an mmengine Runner (which records max_iters) or pass total_iters')

    def momentum_at(self, step: int, total: int) -> float:
        """EMA momentum at ``step`` of ``total``: base_momentum at 0, 1 at and after ``total``."""
        progress = min(step, total) / total
        return 1 - (1 - self.base_momentum) * (math.cos(math.pi * progress) + 1) / 2

    @torch.no_grad()
    def momentum_update(self) -> float:
        """One EMA step of the target towards the online network; returns the momentum used."""
        momentum = self.momentum_at(int(self.ema_step), self.total_steps())
        momentum_update_((self.target_backbone, self.target_projector), (self.backbone, self.projector), momentum)
        self.ema_step += 1
        return momentum

    def extract_feat(self, images: torch.Tensor) -> torch.Tensor:
        """Online backbone features: (B, 3, H, W) -> (B, C, h, w)."""
        return self.backbone(images)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict[str, torch.Tensor],
                                               List[BaseDataElement]]:
        """``tensor``: online backbone features; ``loss``: the training loss; ``predict``: the
        samples with their per-location L2-normalised online backbone features in ``feature``.

        ``inputs`` is (B, 2, 3, S, S) normalised view pairs (as ``TwoViewDataPreprocessor``
        gives); ``tensor`` and ``predict`` also take (B, 3, H, W) images. Features of view pairs
        come back as (B, 2, C, h, w).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            if inputs.dim() == 5:
                return self.extract_feat(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])
            return self.extract_feat(inputs)
        if mode == 'predict':
            features = F.normalize(self.forward(inputs, mode='tensor'), dim=-3)
            samples = data_samples if data_samples is not None else [
                BaseDataElement() for _ in range(len(inputs))]
            for sample, feature in zip(samples, features):
                sample.set_field(feature, 'feature')
            return samples
        raise ValueError(f'FC.forward: mode must be "tensor", "loss" or "predict", got {mode!r}')

    def loss(self, inputs: torch.Tensor, data_samples: List[BaseDataElement]) -> Dict[str, torch.Tensor]:
        """Symmetric FC loss of (B, 2, 3, S, S) view pairs whose samples carry ``crop_boxes``
        (2, 4); also returns the EMA momentum used (logged, not a loss)."""
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError(f'FC.loss expects (B, 2, 3, S, S) view pairs, got {tuple(inputs.shape)}')
        if data_samples is None or any('crop_boxes' not in sample for sample in data_samples):
            raise ValueError('FC.loss needs data_samples with a crop_boxes field (2, 4) per sample, '
                             'as the two-view crop transform produces')
        boxes = torch.stack([sample.crop_boxes for sample in data_samples]).to(inputs.device)  # (B, 2, 4)
        view1, view2 = inputs[:, 0], inputs[:, 1]

        # Each view through the networks on its own: BN statistics per view, as the reference.
        pred1 = self.predictor(self.projector(self.backbone(view1)))
        pred2 = self.predictor(self.projector(self.backbone(view2)))
        with torch.no_grad():
            momentum = self.momentum_update()
            target1 = self.target_projector(self.target_backbone(view1))
            target2 = self.target_projector(self.target_backbone(view2))

        loss = (self.loss_module(pred1, target2, boxes[:, 0], boxes[:, 1])
                + self.loss_module(pred2, target1, boxes[:, 1], boxes[:, 0]))
        return dict(loss=loss, ema_momentum=torch.tensor(momentum, device=inputs.device))
