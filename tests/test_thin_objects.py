"""The dilution gain against the reference protocol on a thin rod (a rendered turning video, the default model's
real features): the rod turns end-on, thins to a few pixels and fades into the background."""
import numpy as np
import pytest

from sfc_plugin.apis.inference import build_model
from sfc_plugin.benchmarks.returning import propagated_ious, video_features
from sfc_plugin.generators.turning_benchmark import plan_video, render_video
from sfc_plugin.runtime.backends import DEFAULT_MODEL_CONFIG

ROD = 2


@pytest.mark.slow
def test_a_thin_rod_the_reference_loses_survives_with_the_dilution_gain():
    # video 2 of the turning tune set's draws (tools/make_vos_benchmark.py --kind turning --seed 1), the draw its
    # writer accepted, rendered for 30 frames instead of the tune set's 20: a cone, a rod and a ring
    plan = plan_video(seed=1, index=2, attempt=1, num_frames=30, height=240, width=432)
    assert [obj['kind'] for obj in plan['objects']] == ['cone', 'rod', 'ring']
    frames, label_maps = render_video(plan)
    model, _ = build_model(DEFAULT_MODEL_CONFIG)
    feats = video_features(model, frames)
    reference = propagated_ious(feats, label_maps, ROD, model.settings)
    lifted = propagated_ious(feats, label_maps, ROD, model.settings.replace(dilution_gain=2.0))
    assert len(reference) == 30
    assert np.array_equal(reference[:10] > 0.5, lifted[:10] > 0.5)  # alike while the rod is side-on
    assert reference[15:].max() < 0.05  # the reference loses it as it turns end-on ...
    assert lifted[15:].min() > 0.15  # ... the gain keeps it to the last frame
