"""The SFC feature: a fine-grained and a semantic network, each L2-normalised, fused late (eq. 7)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from sfc_plugin.registry import MODELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Names of the reduced-precision feature networks (``amp_dtype``); None is fp32.
AMP_DTYPES = {None: None, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


@MODELS.register_module()
class SFCBackbone(BaseModule):
    """Fused (or single-network) correspondence feature, the one implementation of docs/method.md section 1.

    Takes float RGB in [0, 1]; each branch normalises its own input with its own mean/std, so
    the whole preprocessing lives inside the model (as an exported ONNX graph needs). Output, per
    location: ``normalize(cat(lambda * normalize(F_fc), normalize(F_sem)))`` over channels,
    fine-grained channels first; its cosine affinity is
    ``(lambda^2 cos_fc + cos_sem) / (1 + lambda^2)``. With one branch: ``normalize(F)``.
    If the branches' spatial sizes differ (e.g. a semantic branch at stride 16), the semantic map
    is resized bilinearly to the fine-grained one's size before fusing.

    On the CPU the networks run on channels-last images by default (oneDNN's faster convolution layout;
    ``tools/benchmark_backbones.py --compare-layouts`` measures both); the output is returned contiguous and
    equals the default layout's to rounding (2e-7).

    ``amp_dtype`` runs the networks under autocast in float16 or bfloat16 (a faster but different feature: on a
    CPU with AVX-512 BF16 bfloat16 takes about half the time, and the features differ from fp32's by up to 0.06);
    the branch maps are normalised and fused in fp32.

    Checkpoint keys are ``semantic.*`` and ``fine_grained.*`` (``backbone.semantic.*`` ... in a
    full model); ``tools/convert_checkpoint.py --prefix ... --merge ...`` writes such a file.

    Args:
        semantic: config of the semantic network (e.g. a MoCo ResNet-50), or None.
        fine_grained: config of the fine-grained network (the FC ResNet-18), or None.
        fine_grained_weight: lambda of eq. 7 (1.75 on DAVIS, 1.0 on JHMDB and VIP).
        channels_last: run the networks on channels-last images when on the CPU (not when traced for export).
        amp_dtype: None (fp32), 'float16' or 'bfloat16': run the networks under autocast in that dtype (not when
            traced for export, which has its own precision option).
        semantic_mean, semantic_std, fine_grained_mean, fine_grained_std: per-branch input
            normalisation on the [0, 1] scale (ImageNet's by default).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 semantic: Optional[dict] = None,
                 fine_grained: Optional[dict] = None,
                 fine_grained_weight: float = 1.75,
                 semantic_mean: Sequence[float] = IMAGENET_MEAN,
                 semantic_std: Sequence[float] = IMAGENET_STD,
                 fine_grained_mean: Sequence[float] = IMAGENET_MEAN,
                 fine_grained_std: Sequence[float] = IMAGENET_STD,
                 channels_last: bool = True,
                 amp_dtype: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if semantic is None and fine_grained is None:
            raise ValueError('SFCBackbone needs a semantic or a fine_grained network config (or both)')
        self.fine_grained_weight = float(fine_grained_weight)
        self.channels_last = channels_last
        if amp_dtype not in AMP_DTYPES:
            raise ValueError(f'amp_dtype must be one of {list(AMP_DTYPES)}, got {amp_dtype!r}')
        self.amp_dtype = amp_dtype
        self.semantic = MODELS.build(semantic) if semantic is not None else None
        self.fine_grained = MODELS.build(fine_grained) if fine_grained is not None else None
        # Not persistent: checkpoints hold network weights only.
        self.register_buffer('semantic_mean', torch.tensor(semantic_mean).view(1, 3, 1, 1), False)
        self.register_buffer('semantic_std', torch.tensor(semantic_std).view(1, 3, 1, 1), False)
        self.register_buffer('fine_grained_mean', torch.tensor(fine_grained_mean).view(1, 3, 1, 1), False)
        self.register_buffer('fine_grained_std', torch.tensor(fine_grained_std).view(1, 3, 1, 1), False)

        branches = [branch for branch in (self.fine_grained, self.semantic) if branch is not None]
        self.out_channels = sum(branch.out_channels for branch in branches)
        self.stride = branches[0].stride  # the fine-grained one's when both are given

    def branch_features(self, images: torch.Tensor) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(B, 3, H, W) RGB in [0, 1] -> (fine-grained, semantic) maps, each L2-normalised per
        location (None for an absent branch); the semantic map at the fine-grained one's size."""
        fine = semantic = None
        if self.channels_last and images.device.type == 'cpu' and not torch.jit.is_tracing():
            images = images.contiguous(memory_format=torch.channels_last)
        amp_dtype = None if torch.jit.is_tracing() else AMP_DTYPES[self.amp_dtype]  # an export has its own precision
        with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            if self.fine_grained is not None:
                fine = self.fine_grained((images - self.fine_grained_mean) / self.fine_grained_std)
            if self.semantic is not None:
                semantic = self.semantic((images - self.semantic_mean) / self.semantic_std)
        if fine is not None:
            fine = F.normalize(fine.float(), dim=1)
        if semantic is not None:
            semantic = semantic.float()
            if fine is not None and semantic.shape[-2:] != fine.shape[-2:]:
                semantic = F.interpolate(semantic, size=fine.shape[-2:], mode='bilinear', align_corners=False)
            semantic = F.normalize(semantic, dim=1)
        return fine, semantic

    def fuse(self, fine: Optional[torch.Tensor], semantic: Optional[torch.Tensor]) -> torch.Tensor:
        """Eq. 7 on normalised branch maps: ``normalize(cat(lambda * fine, semantic))``, or the one
        branch there is."""
        if fine is None:
            return semantic
        if semantic is None:
            return fine
        return F.normalize(torch.cat([self.fine_grained_weight * fine, semantic], dim=1), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, out_channels, h, w) per-location L2-normalised."""
        return self.fuse(*self.branch_features(images)).contiguous()
