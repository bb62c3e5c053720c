"""An object hidden behind another one for many frames, and what brings it back (a rendered turning video, the
default model's real features): the long memory, read without the radius, finds it again when the features can
tell it from the background; the same object textured like the footage around it is lost."""
import cv2
import numpy as np
import pytest
import torch

from sfc_plugin.apis.inference import build_model
from sfc_plugin.generators.turning_benchmark import TEXTURE_SIDE, plan_video, render_video
from sfc_plugin.propagation import MaskCodec, TiledPropagator, VideoLabelLoop, network_input_size
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CONFIG
from sfc_plugin.utils import image_tensor

PASSING = 2


def colour_checker() -> np.ndarray:
    """A texture unlike any footage: 6 x 6 squares of four saturated colours."""
    rows, cols = np.mgrid[:TEXTURE_SIDE, :TEXTURE_SIDE] // (TEXTURE_SIDE // 6)
    colours = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 230], [240, 220, 30]], np.float64)
    return colours[(rows + 2 * cols) % 4]


def passing_iou_per_frame(feats, label_maps, settings):
    """IoU of the passing object's predicted and true masks per frame; NaN where both are empty."""
    loop = VideoLabelLoop(TiledPropagator(settings), MaskCodec.for_benchmark(label_maps[0]))
    ious = []
    for t, feat in enumerate(feats):
        prediction = loop.step(feat, label_maps[0] if t == 0 else None)
        predicted, truth = np.asarray(prediction) == PASSING, label_maps[t] == PASSING
        union = (predicted | truth).sum()
        ious.append((predicted & truth).sum() / union if union else np.nan)
    return np.array(ious)


@pytest.mark.slow
def test_a_hidden_object_comes_back_through_the_unrestricted_long_memory():
    # video 3 of the turning tune set's draws (tools/make_vos_benchmark.py --kind turning --seed 1) at 30 frames:
    # a cone turns in front, a second cone passes behind it, hidden in frames 6-22
    plan = plan_video(seed=1, index=3, attempt=0, num_frames=30, height=240, width=432)
    model, _ = build_model(DEFAULT_MODEL_CONFIG)
    height, width = network_input_size((240, 432), model.min_input_side)

    def features_and_masks(textures):
        frames, label_maps = render_video(plan, textures)
        with torch.no_grad():
            feats = [model.backbone(image_tensor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR),
                                                 'cpu'))[0] for frame in frames]
        return feats, label_maps

    feats, label_maps = features_and_masks({PASSING: colour_checker()})
    hidden = [t for t, ids in enumerate(label_maps) if not (ids == PASSING).any()]
    assert hidden == list(range(6, 23))
    back = slice(24, 30)
    reference = passing_iou_per_frame(feats, label_maps, model.settings)
    assert reference[back].min() > 0.6  # found again by frame 0's keys, which the radius does not limit ...
    restricted = passing_iou_per_frame(feats, label_maps, model.settings.replace(radius_on_first=True))
    assert np.nanmax(restricted[back]) < 0.05  # ... and lost when frame 0 is read within the radius only

    feats, label_maps = features_and_masks(None)  # the planned texture, cut from footage like the background's
    assert [t for t, ids in enumerate(label_maps) if not (ids == PASSING).any()] == hidden
    assert np.nanmax(passing_iou_per_frame(feats, label_maps, model.settings)[back]) < 0.1
