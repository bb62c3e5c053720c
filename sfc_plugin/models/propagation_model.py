"""The evaluation model: a correspondence backbone driving the label-propagation core over videos."""
import os.path as osp
import time
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor

from sfc_plugin.propagation import (KeypointCodec, MaskCodec, PropagationSettings, TiledPropagator, VideoLabelLoop,
                                    network_input_size)
from sfc_plugin.registry import MODELS
from sfc_plugin.structures import VideoDataError, validate_video_sample
from sfc_plugin.utils import prepare_image, read_image, read_label_png, write_label_png


@MODELS.register_module()
class PropagationModel(BaseModel):
    """Propagate the first frame's labels through each video (DAVIS masks, VIP parts, JHMDB pose).

    Args:
        backbone: config of the feature network; it takes RGB in [0, 1] and returns
            L2-normalised stride-8 features (``SFCBackbone``, fused or single-branch).
        propagation: the propagation settings (topk, context_len, radius, temperature...), built once into
            :attr:`settings` (:class:`PropagationSettings`); configs of earlier versions call it ``propagator``
            (read through ``upgrade_legacy_config``).
        out_dir: if set, each predicted frame is written as an indexed PNG to
            ``out_dir/<video>/<frame>.png`` with the first annotation's palette.
        keypoint_sigma: std of the Gaussian drawn per JHMDB joint, in feature cells.
        keypoint_topk: number of highest cells averaged to decode a joint.
        min_input_side: frames whose shorter side is smaller are scaled up to it for the network
            (``network_input_size``); masks are still predicted and scored at the frame's size.
            None (the published protocol) runs every frame at its own size. A dataset's fixed
            ``input_size`` (JHMDB, VIP) takes precedence.
    """

    def __init__(self,
                 backbone: dict,
                 propagation: dict,
                 out_dir: Optional[str] = None,
                 keypoint_sigma: float = 0.5,
                 keypoint_topk: int = 3,
                 min_input_side: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.settings = PropagationSettings.from_config(propagation, 'model.propagation')
        self.out_dir = out_dir
        self.keypoint_sigma = keypoint_sigma
        self.keypoint_topk = keypoint_topk
        self.min_input_side = min_input_side

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor') -> Tensor:
        """Features of a batch of RGB images in [0, 1], (B, 3, H, W) -> (B, C, H/8, W/8)."""
        if mode != 'tensor':
            raise ValueError(f'PropagationModel only evaluates (test_step); got mode {mode!r}')
        return self.backbone(inputs)

    @torch.no_grad()
    def test_step(self, data: List[dict]) -> List[dict]:
        """Propagate each video sample of the batch (see the video datasets for the sample keys)."""
        self.eval()
        return [self.propagate_video(sample) for sample in data]

    val_step = test_step

    def propagate_video(self, sample: dict) -> dict:
        """Run one video through the backbone and the propagation core, one frame at a time."""
        validate_video_sample(sample)
        task = sample['task']
        frame_paths = sample['frame_paths']
        height, width = sample['ori_shape']
        input_size = sample.get('input_size')
        scaled_size = network_input_size((height, width), self.min_input_side)
        if input_size is None and scaled_size != (height, width):
            input_size = scaled_size
        network_size = tuple(input_size) if input_size is not None else (height, width)
        palette = None
        if task == 'pose':
            if self.settings.dilution_gain > 1:
                raise ValueError('model.propagation.dilution_gain is for masks (channel 0 the background); '
                                 'keypoint heatmaps propagate without it (1.0)')
            if self.settings.guide_radius > 0:
                raise ValueError('model.propagation.guide_radius upsamples masks; keypoints are decoded from the '
                                 'label maps without it (0)')
            keypoints = np.asarray(sample['keypoints'], np.float32)  # (T, J, 2) original pixels
            first_annotation = keypoints[0]
            codec = KeypointCodec((height, width), network_size, self.backbone.stride, self.keypoint_sigma,
                                  self.keypoint_topk)
            predictions = np.zeros_like(keypoints)
        else:
            first_annotation, palette = read_label_png(sample['first_anno_path'], require_indexed=task == 'vos')
            codec = MaskCodec.for_benchmark(first_annotation).with_guide(self.settings)
            predictions = np.zeros((len(frame_paths), height, width), np.uint8)
        loop = VideoLabelLoop(TiledPropagator(self.settings), codec)
        start = time.perf_counter()

        device = next(self.backbone.parameters()).device
        for index, path in enumerate(frame_paths):
            image = self._read_frame(path, (height, width))
            feat = self.backbone(prepare_image(image, network_size)[None].to(device))[0]  # (C, h, w)
            guide = prepare_image(image, (height, width)).to(device) if self.settings.guide_radius > 0 else None
            prediction = loop.step(feat, first_annotation if index == 0 else None, guide)
            predictions[index] = prediction.cpu().numpy() if isinstance(prediction, torch.Tensor) else prediction
            if self.out_dir is not None and task != 'pose':
                stem = osp.splitext(osp.basename(path))[0]
                write_label_png(osp.join(self.out_dir, sample['video'], f'{stem}.png'),
                                predictions[index], palette)

        seconds = time.perf_counter() - start
        print_log(f'{sample["video"]}: {len(frame_paths)} frames in {seconds:.1f} s '
                  f'({len(frame_paths) / max(seconds, 1e-9):.2f} frames/s)', logger='current')
        result = {key: sample.get(key) for key in ('video', 'anno_paths', 'keypoints', 'ori_shape', 'task')}
        result['pred_keypoints' if task == 'pose' else 'pred_ids'] = predictions
        return result

    @staticmethod
    def _read_frame(path: str, ori_shape: Tuple[int, int]) -> np.ndarray:
        """One frame as (H, W, 3) uint8 RGB; VideoDataError unless it has the video's size."""
        image = read_image(path)
        if image.shape[:2] != tuple(ori_shape):
            raise VideoDataError(f'{path}: frame size {image.shape[:2]} differs from the '
                                 f'video size {tuple(ori_shape)}')
        return image
