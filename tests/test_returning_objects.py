"""An object hidden behind another one for many frames, and what brings it back (a rendered turning video, the
default model's real features): the long memory, read without the radius, finds it again when the features can
tell it from the background; the same object textured like the footage around it is lost."""
import numpy as np
import pytest

from sfc_plugin.apis.inference import build_model
from sfc_plugin.benchmarks.returning import propagated_ious, video_features
from sfc_plugin.generators.turning_benchmark import TEXTURE_SIDE, plan_video, render_video
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CONFIG

PASSING = 2


def colour_checker() -> np.ndarray:
    """A texture unlike any footage: 6 x 6 squares of four saturated colours."""
    rows, cols = np.mgrid[:TEXTURE_SIDE, :TEXTURE_SIDE] // (TEXTURE_SIDE // 6)
    colours = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 230], [240, 220, 30]], np.float64)
    return colours[(rows + 2 * cols) % 4]


@pytest.mark.slow
def test_a_hidden_object_comes_back_through_the_unrestricted_long_memory():
    # video 3 of the turning tune set's draws (tools/make_vos_benchmark.py --kind turning --seed 1) at 30 frames:
    # a cone turns in front, a second cone passes behind it, hidden in frames 6-22
    plan = plan_video(seed=1, index=3, attempt=0, num_frames=30, height=240, width=432)
    model, _ = build_model(DEFAULT_MODEL_CONFIG)

    def features_and_masks(textures):
        frames, label_maps = render_video(plan, textures)
        return video_features(model, frames), label_maps

    feats, label_maps = features_and_masks({PASSING: colour_checker()})
    hidden = [t for t, ids in enumerate(label_maps) if not (ids == PASSING).any()]
    assert hidden == list(range(6, 23))
    back = slice(24, 30)
    reference = propagated_ious(feats, label_maps, PASSING, model.settings)
    assert reference[back].min() > 0.6  # found again by frame 0's keys, which the radius does not limit ...
    restricted = propagated_ious(feats, label_maps, PASSING, model.settings.replace(radius_on_first=True))
    assert np.nanmax(restricted[back]) < 0.05  # ... and lost when frame 0 is read within the radius only

    feats, label_maps = features_and_masks(None)  # the planned texture, cut from footage like the background's
    assert [t for t, ids in enumerate(label_maps) if not (ids == PASSING).any()] == hidden
    assert np.nanmax(propagated_ious(feats, label_maps, PASSING, model.settings)[back]) < 0.1
