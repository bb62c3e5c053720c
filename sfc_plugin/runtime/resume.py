"""What ``--resume`` needs to continue a stopped run exactly where it stopped.

A run keeps, in ``OUT/.sfc-propagate/``, ``state.json`` (what decides the masks: model, settings, video,
mask files) and the soft labels (float32 ``.npy`` at feature resolution) of its last m predicted frames,
each written before the frame's mask. ``--resume`` then:

1. counts the completed frames: the masks ``OUT/<frame>.png`` present from frame 0 on without a gap (each
   is complete: masks are written atomically, in order); the next frame is the first to propagate;
2. refuses to go on if ``state.json`` describes another model, settings, video or masks;
3. rebuilds the context that frame would have had in an uninterrupted run: the long memory is the last
   annotated frame before it (frame 0 or a ``--mask`` keyframe; its annotation), the short-term window the
   m frames before it (the m copies of frame 0 in the first frames), each with the labels the run gave it
   (an annotation, or its saved soft prediction). The backbone runs again on those at most m + 1 frames
   only; nothing is re-propagated. The remaining masks are then those of an uninterrupted run.

After a finished run the soft labels are deleted and ``state.json`` says so; resuming it propagates nothing
(with an overlay asked for, it is made from the masks on disk). Resuming into a folder without masks starts
afresh, so a restarted batch runs the jobs it had not reached.
"""
import json
import os
import shutil
from typing import Callable, Dict, Iterable, Optional

import numpy as np

from sfc_plugin.propagation import PropagationSettings
from sfc_plugin.utils import atomic_path, read_json, write_json

STATE_DIR = '.sfc-propagate'
STATE_FILE = 'state.json'
STATE_FORMAT_VERSION = 1


class ResumeError(ValueError):
    """A run cannot be resumed: no state, another model or video, or missing saved labels."""


def completed_frames(out_dir: str, frame_name: Callable[[int], str], num_frames: Optional[int] = None) -> int:
    """Number of masks ``out_dir/<frame_name(i)>.png`` present for i = 0, 1, ... without a gap."""
    count = 0
    while (num_frames is None or count < num_frames) and os.path.isfile(
            os.path.join(out_dir, frame_name(count) + '.png')):
        count += 1
    return count


def resume_plan(done: int, keyframes: Iterable[int], context_len: int) -> Dict[int, str]:
    """How to rebuild the context of frame ``done`` from the frames before it.

    Returns ``{frame: 'annotate' | 'append'}``: 'annotate' makes the frame the long memory (a propagator's
    ``step(feat, labels)``), 'append' puts it into the short-term window (``append(feat, labels)``); other
    frames are skipped. Starting from frame ``first = max(0, done - m)`` as a (temporary) long memory and
    appending the frames up to ``done - 1`` leaves exactly the window's last m entries (copies of the start
    frame fill the front as the padded sequence's copies of frame 0 do); the last keyframe then becomes the
    long memory, either first (if it lies before ``first``) or in its place in the sequence.
    """
    if done <= 0:
        return {}
    keyframes = set(keyframes)
    last_key = max(k for k in keyframes | {0} if k < done)
    first = max(0, done - context_len)
    if last_key < first:
        plan = {last_key: 'annotate'}
        plan.update({frame: 'append' for frame in range(first, done)})
        return plan
    plan = {first: 'annotate'}
    plan.update({frame: 'annotate' if frame in keyframes else 'append' for frame in range(first + 1, done)})
    return plan


def _normalised(values: dict) -> dict:
    return json.loads(json.dumps(values))


class RunState:
    """The resume state of one output folder (see the module docstring).

    Args:
        out_dir: the masks' folder.
        signature: what decides the masks (JSON-serialisable); a resumed run must have the same.
    """

    def __init__(self, out_dir: str, signature: dict) -> None:
        self.dir = os.path.join(out_dir, STATE_DIR)
        self.path = os.path.join(self.dir, STATE_FILE)
        self.signature = _normalised(signature)
        self.presence: Optional[dict] = None  # the ObjectPresence state a finished run kept (set by resume)

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def start(self) -> None:
        """A fresh run: forget any earlier state."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self._write(finished=False)

    def resume(self) -> bool:
        """Check that the folder holds a run of the same signature; returns whether that run finished."""
        state = read_json(self.path, ResumeError, f'missing; the masks in {os.path.dirname(self.dir)} are not from a '
                                                  'run of sfc-propagate that can be resumed (run without --resume)')
        if state.get('format_version') != STATE_FORMAT_VERSION or not isinstance(state.get('signature'), dict):
            raise ResumeError(f'{self.path}: not a resume state of this sfc_plugin; run without --resume')
        stored = state['signature']
        if isinstance(stored.get('settings'), dict):  # a run of an earlier version lacks the settings added since
            stored = dict(stored, settings=PropagationSettings.complete_protocol(stored['settings']))
        differing = sorted(key for key in set(stored) | set(self.signature)
                           if stored.get(key) != self.signature.get(key))
        if differing:
            raise ResumeError(f'{self.path}: the stopped run used another {", ".join(differing)}; resuming it would '
                              'mix two runs (run without --resume to start again)')
        finished = bool(state.get('finished'))
        if finished:
            self.presence = state.get('presence')
            return True
        self._write(finished=False)
        return False

    def finish(self, presence: Optional[dict] = None) -> None:
        """The run is complete: say so (with ``presence``, its :class:`.presence.ObjectPresence` state), then drop
        the saved labels. In this order, a run killed while the labels are being deleted is still known to be
        complete (its resume needs none of them)."""
        self._write(finished=True, presence=presence)
        for name in os.listdir(self.dir):
            if name.endswith('.npy'):
                os.remove(os.path.join(self.dir, name))

    def _write(self, finished: bool, presence: Optional[dict] = None) -> None:
        os.makedirs(self.dir, exist_ok=True)
        state = {'format_version': STATE_FORMAT_VERSION, 'finished': finished, 'signature': self.signature}
        if presence is not None:
            state['presence'] = presence
        write_json(self.path, state)

    def _labels_path(self, name: str) -> str:
        return os.path.join(self.dir, f'{name}.npy')

    def save_labels(self, name: str, labels: np.ndarray) -> None:
        """Save frame ``name``'s (k, h, w) float32 soft labels (atomically)."""
        with atomic_path(self._labels_path(name)) as tmp:
            with open(tmp, 'wb') as f:
                np.save(f, np.ascontiguousarray(labels, np.float32))

    def load_labels(self, name: str) -> np.ndarray:
        path = self._labels_path(name)
        if not os.path.isfile(path):
            raise ResumeError(f'{path}: missing; the saved labels of the frames before the resume point are needed '
                              '(run without --resume)')
        return np.load(path)

    def drop_labels(self, name: str) -> None:
        """Delete frame ``name``'s saved labels (the frame has left the window)."""
        path = self._labels_path(name)
        if os.path.exists(path):
            os.remove(path)
