"""Which frames the short-term window holds: the context bookkeeping of every propagation backend.

The reference context of a query frame (docs/method.md section 3) is the long memory (the last annotated frame)
plus the last m entries of the padded sequence: m copies of frame 0 (``pad_with_first``; else frame 0
once), then every later frame in order, with its annotation if it has one, else its prediction.
:class:`ContextWindow` tracks those entries over a fixed set of slots and holds no tensors: slot 0 is the
long memory, slots 1..m hold the distinct short-term frames. Copies of the long-memory frame at the front
of the window are counted, not stored; when the window is full, the oldest entry leaves, copies first.

Users: :class:`~sfc_plugin.propagation.TiledPropagator` (copies stay virtual in its tiled memory) and the
runtime's dense context of ``propagate.onnx`` / ``propagate.engine`` (copies materialised in the free slots).
"""
from collections import deque
from typing import List, Tuple


class ContextWindow:
    """The short-term window's bookkeeping (see the module docstring).

    Distinct frames occupy the lowest free slots, so with n of them they are exactly slots 1..n (the tiled
    core scores the slot range ``1 .. n`` in one product).

    Args:
        context_len: m, entries of the short-term window.
        pad_with_first: start with m copies of the first frame (the reference's front padding), else one.
    """

    def __init__(self, context_len: int, pad_with_first: bool = True) -> None:
        if context_len < 1:
            raise ValueError(f'context_len must be >= 1, got {context_len}')
        self.context_len = context_len
        self.pad_with_first = pad_with_first
        self.reset()

    def reset(self) -> None:
        """Forget the video."""
        self.started = False
        self.copies = 0  # copies of the long-memory frame at the front of the window
        self._slots = deque()  # slots of the distinct frames, oldest first

    @property
    def slots(self) -> Tuple[int, ...]:
        """Slots of the distinct short-term frames, oldest first."""
        return tuple(self._slots)

    @property
    def num_entries(self) -> int:
        """Entries of the window: the copies plus the distinct frames (at most m)."""
        return self.copies + len(self._slots)

    def start(self) -> None:
        """A video's first (annotated) frame has been written to slot 0."""
        self.reset()
        self.started = True
        self.copies = self.context_len if self.pad_with_first else 1

    def append(self) -> int:
        """Make room for the next frame (oldest entry out, copies first) and return the slot to write it to."""
        if not self.started:
            raise RuntimeError('the window has no first frame yet: call start() first')
        if self.num_entries == self.context_len:
            if self.copies:
                self.copies -= 1
            else:
                self._slots.popleft()
        slot = self.free_slots(1)[0]
        self._slots.append(slot)
        return slot

    def materialise_copies(self) -> List[int]:
        """Before a keyframe replaces the long memory: its copies in the window become distinct frames.

        Returns the slots that must receive a copy of slot 0 (before slot 0 is overwritten); they become the
        oldest entries, in the order given.
        """
        if not self.started:
            raise RuntimeError('the window has no first frame yet: call start() first')
        slots = self.free_slots(self.copies)
        self._slots.extendleft(reversed(slots))
        self.copies = 0
        return slots

    def free_slots(self, count: int) -> List[int]:
        """The ``count`` lowest short-term slots that hold no distinct frame."""
        used = set(self._slots)
        return [slot for slot in range(1, 1 + self.context_len) if slot not in used][:count]
