"""Batches the two uint8 views of each training sample into one normalised float tensor."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from sfc_plugin.registry import MODELS

# Normalisation of the FC reference training code (docs/method.md section 2), on the 0..255 scale.
FC_TRAIN_MEAN = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
FC_TRAIN_STD = (0.2023 * 255, 0.1994 * 255, 0.2010 * 255)
# ImageNet statistics (MoCo's normalisation), on the 0..255 scale.
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


@MODELS.register_module()
class TwoViewDataPreprocessor(BaseDataPreprocessor):
    """Stack, move to the device, convert to float and normalise two-view samples.

    Input (mmengine's ``pseudo_collate`` of the two-view pipeline):
    ``dict(inputs=[uint8 (2, 3, S, S), ...], data_samples=[BaseDataElement, ...])``; a stacked
    (B, 2, 3, S, S) tensor is accepted too. Output:
    ``dict(inputs=float (B, 2, 3, S, S) normalised, data_samples=[...] on the device)``.

    A data sample with a ``pair_images`` field (uint8 (2, 3, P, P), an image pair for MoCo's
    cross-instance cycle term) gets it back as float, normalised the same way.

    Args:
        mean, std: per-channel RGB normalisation on the 0..255 scale, as in mmengine's
            ``ImgDataPreprocessor`` (default: the FC reference training values).
        non_blocking: asynchronous host-to-device copies.
    """

    def __init__(self, mean: Sequence[float] = FC_TRAIN_MEAN, std: Sequence[float] = FC_TRAIN_STD,
                 non_blocking: Optional[bool] = False) -> None:
        super().__init__(non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'TwoViewDataPreprocessor needs 3 RGB means and stds, got {mean} and {std}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs: Union[torch.Tensor, Sequence[torch.Tensor]] = data['inputs']
        if not isinstance(inputs, torch.Tensor):
            shapes = {tuple(sample.shape) for sample in inputs}
            if len(shapes) != 1:
                raise ValueError('TwoViewDataPreprocessor: all samples must have one shape, '
                                 f'got {sorted(shapes)}')
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5 or inputs.shape[1] != 2 or inputs.shape[2] != 3:
            raise ValueError('TwoViewDataPreprocessor expects two RGB views per sample, '
                             f'(B, 2, 3, S, S) once stacked; got {tuple(inputs.shape)}')
        inputs = self.cast_data(inputs).float()  # copy uint8 to the device, then convert
        inputs = (inputs - self.mean) / self.std
        data_samples = self.cast_data(data.get('data_samples'))
        for sample in data_samples or []:
            if 'pair_images' in sample:
                sample.pair_images = self.normalise_pair(sample.pair_images)
        return dict(inputs=inputs, data_samples=data_samples)

    def normalise_pair(self, pair: torch.Tensor) -> torch.Tensor:
        """uint8 (2, 3, P, P) image pair -> float, normalised like the views."""
        if pair.dim() != 4 or pair.shape[:2] != (2, 3):
            raise ValueError('TwoViewDataPreprocessor: pair_images must be (2, 3, P, P) (source, target), '
                             f'got {tuple(pair.shape)}')
        return (pair.float() - self.mean[0]) / self.std[0]
