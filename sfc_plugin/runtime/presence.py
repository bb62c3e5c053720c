"""Where each object's mask vanished: the per-object part of a run's summary.

Propagation can lose an object (it turns away, it is hidden, it is thin); its id then holds no pixel of
the written masks. A user who knows the frames adds a keyframe there (``--mask FRAME:PATH``). From the
first frame an object holds a pixel on, every run of at least ``vanish_frames`` consecutive frames in which
it holds none is reported: ``[first, last]`` frame of the run, the last one being the video's last frame
if the object never came back.
"""
from typing import Dict, List, Sequence

import numpy as np

DEFAULT_VANISH_FRAMES = 5


class ObjectPresence:
    """Pixel counts of every object (every label value but background 0) over the frames of a video.

    Args:
        label_values: the run's ids, background 0 included.
        vanish_frames: shortest run of empty frames that is reported (>= 1).
    Frames must be added in order, each once.
    """

    def __init__(self, label_values: Sequence[int], vanish_frames: int = DEFAULT_VANISH_FRAMES) -> None:
        if vanish_frames < 1:
            raise ValueError(f'vanish_frames must be >= 1, got {vanish_frames!r}')
        self.objects = [int(value) for value in label_values if value != 0]
        self.vanish_frames = vanish_frames
        self.next_frame = 0
        self.first_frame: Dict[int, int] = {}  # object -> first frame with a pixel
        self.last_frame: Dict[int, int] = {}  # object -> last frame with a pixel
        self.frames_present = {obj: 0 for obj in self.objects}
        self.min_pixels: Dict[int, int] = {}  # object -> fewest pixels in a frame where it is present
        self.empty_runs: Dict[int, List[List[int]]] = {obj: [] for obj in self.objects}

    def add(self, frame: int, ids: np.ndarray) -> None:
        """Count the objects' pixels in the (H, W) id mask of ``frame``."""
        if frame != self.next_frame:
            raise ValueError(f'ObjectPresence: frame {frame} added, expected frame {self.next_frame}')
        self.next_frame += 1
        counts = np.bincount(ids.ravel(), minlength=256)
        for obj in self.objects:
            pixels = int(counts[obj])
            if pixels:
                self.first_frame.setdefault(obj, frame)
                self.last_frame[obj] = frame
                self.frames_present[obj] += 1
                self.min_pixels[obj] = min(pixels, self.min_pixels.get(obj, pixels))
            elif obj in self.first_frame:
                runs = self.empty_runs[obj]
                if runs and runs[-1][1] == frame - 1:
                    runs[-1][1] = frame
                else:
                    runs.append([frame, frame])

    def state(self) -> dict:
        """Everything counted so far, as JSON: a finished run keeps it, so resuming it need not read its masks."""
        return {'frames': self.next_frame,
                'objects': {str(obj): {'first_frame': self.first_frame.get(obj), 'last_frame': self.last_frame.get(obj),
                                       'frames_present': self.frames_present[obj],
                                       'min_pixels': self.min_pixels.get(obj), 'empty_runs': self.empty_runs[obj]}
                            for obj in self.objects}}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state` of the same objects (after ``state['frames']`` frames)."""
        self.next_frame = state['frames']
        for obj in self.objects:
            counted = state['objects'][str(obj)]
            for name, values in (('first_frame', self.first_frame), ('last_frame', self.last_frame),
                                 ('min_pixels', self.min_pixels)):
                if counted[name] is not None:
                    values[obj] = counted[name]
            self.frames_present[obj] = counted['frames_present']
            self.empty_runs[obj] = [list(run) for run in counted['empty_runs']]

    def vanished(self, obj: int) -> List[List[int]]:
        """``[first, last]`` of every run of at least ``vanish_frames`` frames without a pixel of ``obj``."""
        return [list(run) for run in self.empty_runs[obj] if run[1] - run[0] + 1 >= self.vanish_frames]

    def report(self) -> Dict[str, dict]:
        """``{id: {first_frame, last_frame, frames_present, min_pixels, vanished}}`` (None where never seen)."""
        return {str(obj): {'first_frame': self.first_frame.get(obj), 'last_frame': self.last_frame.get(obj),
                           'frames_present': self.frames_present[obj], 'min_pixels': self.min_pixels.get(obj),
                           'vanished': self.vanished(obj)}
                for obj in self.objects}

    def warnings(self) -> List[str]:
        """One line per vanished run, saying where a keyframe would help."""
        lines = []
        last = self.next_frame - 1
        for obj in self.objects:
            for first, end in self.vanished(obj):
                count = end - first + 1
                if end == last:
                    lines.append(f'object {obj} vanished at frame {first} and did not come back ({count} frames): '
                                 f'add a keyframe there with --mask {first}:PATH')
                else:
                    lines.append(f'object {obj} vanished in frames {first}-{end} ({count} frames): '
                                 f'add a keyframe there with --mask {first}:PATH')
        return lines
