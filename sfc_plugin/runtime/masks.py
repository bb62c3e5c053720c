"""The annotated masks of a video: frame 0's and optional later keyframes', read once before the video.

Three kinds of mask file, all masks of a video of one kind:

- an indexed (palette) PNG, DAVIS style: pixel values are object ids, the palette gives their colours;
- a grayscale PNG whose values are object ids (written back with the DAVIS palette);
- an RGB(A) colour mask: black is the background, every other flat colour one object (ids 1, 2, ... in
  the order the colours first appear: frame 0's sorted, then new ones of later keyframes); alpha is ignored.

Id 0 is the background; every id present in any mask is a class (so an object may first appear in a keyframe),
255 included: a user's mask has no void id (``MaskCodec.for_user_masks``; a 0/255 binary mask tracks object 255).
The output masks keep these ids and the palette.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sfc_plugin.propagation import MaskCodec
from sfc_plugin.utils.io import GRAYSCALE_MODES, ImageReadError, default_palette, read_label_image

MAX_COLOURS = 255  # ids 1..255 for the objects of an RGB mask


class MaskError(ValueError):
    """A mask file is missing, unreadable, or does not fit the video or the model."""


@dataclass
class Annotations:
    """The masks of one video.

    Attributes:
        masks: {frame index: (H, W) uint8 ids}; frame 0 is always there.
        paths: {frame index: mask file}.
        codec: the masks' codec (``MaskCodec.for_user_masks``) for the video loop.
        palette: (256, 3) uint8 colours of the output PNGs.
    """
    masks: Dict[int, np.ndarray]
    paths: Dict[int, str]
    codec: MaskCodec
    palette: np.ndarray

    @property
    def label_values(self) -> List[int]:
        """Sorted ids of all masks, background 0 included; channel k of the soft labels is ``label_values[k]``."""
        return self.codec.label_values

    def check_frame_size(self, frame_size: Tuple[int, int], video: str) -> None:
        """MaskError naming the mask if its size differs from the frames' (H, W)."""
        for frame, ids in sorted(self.masks.items()):
            if ids.shape != tuple(frame_size):
                raise MaskError(f'{self.paths[frame]}: mask of {ids.shape[1]}x{ids.shape[0]} pixels, but the frames '
                                f'of {video} are {frame_size[1]}x{frame_size[0]} (width x height)')

    def check_num_labels(self, max_labels: Optional[int], model: str) -> None:
        """MaskError if the masks hold more classes (background included) than the model takes."""
        if max_labels is not None and len(self.label_values) > max_labels:
            files = ', '.join(self.paths[frame] for frame in sorted(self.paths))
            raise MaskError(f'{files}: {len(self.label_values)} labels (background and ids '
                            f'{self.label_values[1:]}), but {model} was exported for at most {max_labels}; '
                            'export it again with a larger --num-labels')


def read_mask_file(path: str) -> Tuple[str, np.ndarray, Optional[np.ndarray]]:
    """A mask file as ``('ids', (H, W) uint8, palette (256, 3) or None)`` or ``('colours', (H, W, 3) uint8, None)``."""
    try:
        mode, pixels, palette = read_label_image(path, 'mask')
    except ImageReadError as error:
        raise MaskError(str(error)) from error
    if mode in ('RGB', 'RGBA'):
        return 'colours', pixels, None
    if mode == 'P' or mode in GRAYSCALE_MODES:
        return 'ids', pixels, palette
    raise MaskError(f'{path}: unsupported image mode {mode!r}; expected an indexed PNG, a grayscale id PNG or an '
                    'RGB colour mask')


def colours_to_ids(colours: np.ndarray, table: Dict[Tuple[int, int, int], int], path: str) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) ids; black is 0, colours missing from ``table`` get the next ids (in place)."""
    unique, inverse = np.unique(colours.reshape(-1, 3), axis=0, return_inverse=True)
    table.setdefault((0, 0, 0), 0)
    for colour in map(tuple, unique.tolist()):
        if colour not in table:
            table[colour] = len(table)
    if len(table) - 1 > MAX_COLOURS:
        raise MaskError(f'{path}: {len(table) - 1} object colours; an RGB mask gives each object one flat colour '
                        f'(at most {MAX_COLOURS}): anti-aliased or JPEG-compressed masks do not work')
    ids = np.array([table[tuple(colour)] for colour in unique.tolist()], np.uint8)
    return ids[inverse.reshape(-1)].reshape(colours.shape[:2])


def load_annotations(paths: Dict[int, str]) -> Annotations:
    """Read frame 0's mask and the keyframes' (``{frame index: path}``); MaskError naming the file on bad input."""
    if 0 not in paths:
        raise MaskError('the first frame (frame 0) needs a mask')
    bad = sorted(frame for frame in paths if not isinstance(frame, int) or frame < 0)
    if bad:
        raise MaskError(f'keyframe indices must be integers >= 0, got {bad}')
    files = {frame: read_mask_file(paths[frame]) for frame in sorted(paths)}
    kinds = {frame: kind for frame, (kind, _, _) in files.items()}
    if len(set(kinds.values())) > 1:
        raise MaskError('all masks of a video must be of one kind (id PNGs or RGB colour masks), got ' +
                        ', '.join(f'{paths[frame]}: {kind}' for frame, kind in kinds.items()))
    masks: Dict[int, np.ndarray] = {}
    if kinds[0] == 'colours':
        table: Dict[Tuple[int, int, int], int] = {}
        for frame, (_, colours, _) in files.items():
            masks[frame] = colours_to_ids(colours, table, paths[frame])
        palette = default_palette()
        for colour, value in table.items():
            palette[value] = colour
    else:
        masks = {frame: ids for frame, (_, ids, _) in files.items()}
        palette = files[0][2] if files[0][2] is not None else default_palette()
    if not masks[0].any():
        raise MaskError(f'{paths[0]}: the first-frame mask has no object (every pixel is background 0); '
                        'mark the objects to track with ids or colours other than 0 / black')
    codec = MaskCodec.for_user_masks([masks[frame] for frame in sorted(masks)])
    return Annotations(masks, dict(paths), codec, palette)


def parse_keyframe(text: str) -> Tuple[int, str]:
    """``'FRAME:PATH'`` -> (frame, path)."""
    frame, sep, path = text.partition(':')
    if not sep or not frame.strip().isdigit() or not path:
        raise ValueError(f'a keyframe mask is FRAME:PATH (e.g. 40:masks/00040.png), got {text!r}')
    return int(frame), path


def keyframe_paths(first_mask: str, keyframes: Sequence[str]) -> Dict[int, str]:
    """{frame: path} from the first mask and ``FRAME:PATH`` strings; ValueError on duplicates."""
    paths = {0: first_mask}
    for text in keyframes:
        frame, path = parse_keyframe(text)
        if frame in paths:
            raise ValueError(f'frame {frame} has two masks: {paths[frame]} and {path}')
        paths[frame] = path
    return paths
