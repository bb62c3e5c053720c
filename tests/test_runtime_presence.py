"""ObjectPresence: per-object pixel counts and the runs of frames where an object's mask vanished."""
import numpy as np
import pytest

from sfc_plugin.runtime.presence import ObjectPresence


def masks_from_presence(pattern: dict, num_frames: int) -> list:
    """(8, 8) id masks: object k holds pattern[k][t] pixels in frame t (row k, from the left)."""
    frames = []
    for t in range(num_frames):
        ids = np.zeros((8, 8), np.uint8)
        for obj, counts in pattern.items():
            ids[obj, :counts[t]] = obj
        frames.append(ids)
    return frames


def test_empty_runs_counted_from_the_first_appearance():
    pattern = {1: [3, 0, 0, 0, 2, 1, 0, 0, 0, 0],   # gone 1-3 and 6-9 (to the end)
               2: [0, 0, 0, 4, 4, 4, 4, 0, 4, 4],   # appears at 3 (a later keyframe); gone at 7 only
               3: [0] * 10}                          # in the label values, never in a mask
    presence = ObjectPresence([0, 1, 2, 3], vanish_frames=3)
    for t, ids in enumerate(masks_from_presence(pattern, 10)):
        presence.add(t, ids)
    report = presence.report()
    assert report['1'] == {'first_frame': 0, 'last_frame': 5, 'frames_present': 3, 'min_pixels': 1,
                           'vanished': [[1, 3], [6, 9]]}
    assert report['2'] == {'first_frame': 3, 'last_frame': 9, 'frames_present': 6, 'min_pixels': 4,
                           'vanished': []}  # one empty frame: shorter than vanish_frames
    assert report['3'] == {'first_frame': None, 'last_frame': None, 'frames_present': 0, 'min_pixels': None,
                           'vanished': []}
    warnings = presence.warnings()
    assert warnings == ['object 1 vanished in frames 1-3 (3 frames): add a keyframe there with --mask 1:PATH',
                        'object 1 vanished at frame 6 and did not come back (4 frames): add a keyframe there '
                        'with --mask 6:PATH']
    presence_1 = ObjectPresence([0, 1, 2, 3], vanish_frames=1)
    for t, ids in enumerate(masks_from_presence(pattern, 10)):
        presence_1.add(t, ids)
    assert presence_1.report()['2']['vanished'] == [[7, 7]]


def test_background_id_255_object_and_frame_order():
    presence = ObjectPresence([0, 255])
    ids = np.zeros((4, 4), np.uint8)
    ids[0, 0] = 255
    presence.add(0, ids)
    assert presence.report() == {'255': {'first_frame': 0, 'last_frame': 0, 'frames_present': 1, 'min_pixels': 1,
                                         'vanished': []}}
    with pytest.raises(ValueError, match='frame 2 added, expected frame 1'):
        presence.add(2, ids)
    with pytest.raises(ValueError, match='vanish_frames must be >= 1'):
        ObjectPresence([0, 1], vanish_frames=0)


def test_state_restores_the_counts_exactly():
    """A finished run keeps ObjectPresence.state(); restoring it (through JSON) gives the same report and goes on
    counting as if every frame had been added."""
    import json
    pattern = {1: [3, 0, 0, 0, 2, 1, 0, 0, 0, 0], 2: [0, 0, 0, 4, 4, 4, 4, 0, 4, 4], 3: [0] * 10}
    frames = masks_from_presence(pattern, 10)
    whole = ObjectPresence([0, 1, 2, 3], vanish_frames=2)
    first = ObjectPresence([0, 1, 2, 3], vanish_frames=2)
    for t, ids in enumerate(frames):
        whole.add(t, ids)
        if t < 6:
            first.add(t, ids)
    restored = ObjectPresence([0, 1, 2, 3], vanish_frames=2)
    restored.restore(json.loads(json.dumps(first.state())))
    for t in range(6, 10):
        restored.add(t, frames[t])
    assert restored.report() == whole.report() and restored.warnings() == whole.warnings()
