"""The context bookkeeping shared by the core and the runtime: ContextWindow, the dense context of the
exported step, and the resume plan."""
import random

import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.propagation import ExportedStepPropagator, PropagationSettings, PropagationStep, TiledPropagator
from sfc_plugin.propagation.window import ContextWindow
from sfc_plugin.runtime.resume import resume_plan

SETTINGS = dict(topk=4, radius=3.0, temperature=0.1)
C, H, W = 8, 6, 7


def video(frames: int, seed: int = 0) -> list:
    """Features that drift slowly (so the short-term keys matter), L2-normalised over channels."""
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(C, H, W, generator=g)
    frames_out = []
    for _ in range(frames):
        feat = feat + 0.4 * torch.randn(C, H, W, generator=g)
        frames_out.append(F.normalize(feat, dim=0))
    return frames_out


def soft_labels(k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(k, H, W, generator=g), 0)


def reference_window(events, context_len, pad_with_first):
    """The padded sequence written out: (long-memory frame, the last m entries), one per frame."""
    sequence, long_frame, states = [], None, []
    for frame, annotated in enumerate(events):
        if frame == 0:
            sequence = [0] * context_len if pad_with_first else [0]
            long_frame = 0
        else:
            sequence.append(frame)
            if annotated:
                long_frame = frame
        states.append((long_frame, sequence[-context_len:]))
    return states


@pytest.mark.parametrize('pad_with_first', [True, False])
@pytest.mark.parametrize('context_len', [1, 2, 3, 5])
def test_window_entries_follow_the_padded_sequence(context_len, pad_with_first):
    rng = random.Random(context_len)
    for _ in range(20):
        events = [True] + [rng.random() < 0.2 for _ in range(14)]
        window = ContextWindow(context_len, pad_with_first)
        slot_frame = {}  # what each slot holds, written as the users of the window write it
        for frame, (annotated, (long_frame, entries)) in enumerate(
                zip(events, reference_window(events, context_len, pad_with_first))):
            if frame == 0:
                window.start()
                slot_frame[0] = 0
            elif annotated:
                for slot in window.materialise_copies():
                    slot_frame[slot] = slot_frame[0]
                slot_frame[0] = frame
                slot_frame[window.append()] = frame
            else:
                slot_frame[window.append()] = frame
            assert slot_frame[0] == long_frame
            assert [slot_frame[0]] * window.copies + [slot_frame[s] for s in window.slots] == entries
            assert sorted(window.slots) == list(range(1, 1 + len(window.slots)))  # the tiled core's slot range


def run_label_propagator(frames, annotations, context_len, **options):
    core = TiledPropagator(PropagationSettings(**SETTINGS, context_len=context_len, select_dtype=None, **options))
    return [core.step(f, annotations.get(t)) for t, f in enumerate(frames)]


@pytest.mark.parametrize('options', [{}, {'hard_labels': True}, {'dilution_gain': 2.0}])
def test_dense_context_matches_the_label_propagator(options):
    """Keyframes while copies of frame 0 are in the window (t=2) and after (t=7); 3 labels in 5 channels."""
    m, k, exported_k = 3, 3, 5
    frames = video(11, seed=1)
    annotations = {t: soft_labels(k, seed=t) for t in (0, 2, 7)}
    expected = run_label_propagator(frames, annotations, m, **options)
    if options.get('dilution_gain'):  # the setting changes the predictions, so the runs below must apply it
        unlifted = run_label_propagator(frames, annotations, m)
        assert not torch.allclose(expected[-1], unlifted[-1], atol=1e-3)
    settings = PropagationSettings(**SETTINGS, context_len=m, **options)
    dense = ExportedStepPropagator(PropagationStep(H, W, settings), settings, C, exported_k, (H, W),
                                     torch.device('cpu'))
    for t, frame in enumerate(frames):
        got = dense.step(frame, annotations.get(t))
        assert got.shape == (k, H, W)
        assert torch.allclose(got, expected[t], atol=1e-5), f'frame {t}'
        assert not dense.store.labels[:, k:].any()  # the padding channels stay zero


def test_dense_context_rejects_what_the_export_cannot_take():
    settings = PropagationSettings(**SETTINGS, context_len=2)
    step = PropagationStep(H, W, settings)
    with pytest.raises(ValueError, match='pad_with_first'):
        ExportedStepPropagator(step, settings.replace(pad_with_first=False), C, 3, (H, W), torch.device('cpu'))
    dense = ExportedStepPropagator(step, settings, C, 3, (H, W), torch.device('cpu'))
    frame = video(1)[0]
    with pytest.raises(ValueError, match='first frame'):
        dense.step(frame)
    with pytest.raises(ValueError, match='1 <= k <= 3'):
        dense.step(frame, soft_labels(4, seed=0))
    with pytest.raises(ValueError, match='exported sizes'):
        dense.step(frame[:, :5], soft_labels(2, seed=0))


@pytest.mark.parametrize('backend', ['label_propagator', 'dense'])
@pytest.mark.parametrize('pad_with_first', [True, False])
def test_resume_plan_rebuilds_the_context_exactly(backend, pad_with_first):
    """For every stop point: a fresh propagator fed only the planned frames (annotations, or the predictions
    of the first run) predicts the remaining frames exactly as the uninterrupted run did."""
    if backend == 'dense' and not pad_with_first:
        pytest.skip('the exported step needs pad_with_first')
    m, k = 3, 2
    frames = video(12, seed=2)
    annotations = {t: soft_labels(k, seed=10 + t) for t in (0, 2, 8)}

    def propagator():
        if backend == 'dense':
            settings = PropagationSettings(**SETTINGS, context_len=m)
            return ExportedStepPropagator(PropagationStep(H, W, settings), settings, C, k, (H, W),
                                            torch.device('cpu'))
        return TiledPropagator(PropagationSettings(**SETTINGS, context_len=m, select_dtype=None,
                                                   pad_with_first=pad_with_first))

    first_run = propagator()
    outputs = [first_run.step(f, annotations.get(t)) for t, f in enumerate(frames)]
    for done in range(1, len(frames)):
        plan = resume_plan(done, annotations, m)
        assert set(plan) <= set(range(done)) and len(plan) <= m + 1  # at most m + 1 backbone runs
        resumed = propagator()
        for t in sorted(plan):
            if plan[t] == 'annotate':
                resumed.step(frames[t], outputs[t])
            else:
                resumed.append(frames[t], outputs[t])
        for t in range(done, len(frames)):
            assert torch.equal(resumed.step(frames[t], annotations.get(t)), outputs[t]), f'stopped at {done}, frame {t}'


def test_resume_plan_examples():
    # Early stop: the window still holds copies of frame 0, rebuilt by starting from frame 0.
    assert resume_plan(3, {0}, 4) == {0: 'annotate', 1: 'append', 2: 'append'}
    # The last keyframe lies before the window: it becomes the long memory first.
    assert resume_plan(10, {0, 2}, 3) == {2: 'annotate', 7: 'append', 8: 'append', 9: 'append'}
    # A keyframe inside the window takes its place in the sequence.
    assert resume_plan(10, {0, 8}, 3) == {7: 'annotate', 8: 'annotate', 9: 'append'}
    assert resume_plan(0, {0}, 3) == {}
