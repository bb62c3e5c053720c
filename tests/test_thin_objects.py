"""The dilution gain against the reference protocol on a thin rod (a rendered turning video, the default model's
real features): the rod turns end-on, thins to a few pixels and fades into the background."""
import cv2
import numpy as np
import pytest
import torch

from sfc_plugin.apis.inference import build_model
from sfc_plugin.generators.turning_benchmark import plan_video, render_video
from sfc_plugin.propagation import MaskCodec, TiledPropagator, VideoLabelLoop, network_input_size
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CONFIG
from sfc_plugin.utils import image_tensor

ROD = 2


def rod_iou_per_frame(feats, label_maps, settings):
    loop = VideoLabelLoop(TiledPropagator(settings), MaskCodec.for_benchmark(label_maps[0]))
    ious = []
    for t, feat in enumerate(feats):
        prediction = loop.step(feat, label_maps[0] if t == 0 else None)
        predicted, truth = np.asarray(prediction) == ROD, label_maps[t] == ROD
        ious.append((predicted & truth).sum() / max((predicted | truth).sum(), 1))
    return np.array(ious)


@pytest.mark.slow
def test_a_thin_rod_the_reference_loses_survives_with_the_dilution_gain():
    # video 2 of the turning tune set's draws (tools/make_vos_benchmark.py --kind turning --seed 1), the draw its
    # writer accepted, rendered for 30 frames instead of the tune set's 20: a cone, a rod and a ring
    plan = plan_video(seed=1, index=2, attempt=1, num_frames=30, height=240, width=432)
    assert [obj['kind'] for obj in plan['objects']] == ['cone', 'rod', 'ring']
    frames, label_maps = render_video(plan)
    model, _ = build_model(DEFAULT_MODEL_CONFIG)
    height, width = network_input_size((240, 432), model.min_input_side)
    with torch.no_grad():
        feats = [model.backbone(image_tensor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR),
                                             'cpu'))[0] for frame in frames]
    reference = rod_iou_per_frame(feats, label_maps, model.settings)
    lifted = rod_iou_per_frame(feats, label_maps, model.settings.replace(dilution_gain=2.0))
    assert len(reference) == 30
    assert np.array_equal(reference[:10] > 0.5, lifted[:10] > 0.5)  # alike while the rod is side-on
    assert reference[15:].max() < 0.05  # the reference loses it as it turns end-on ...
    assert lifted[15:].min() > 0.15  # ... the gain keeps it to the last frame
