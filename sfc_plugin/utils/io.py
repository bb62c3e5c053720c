"""Image, label and JSON I/O with errors that name the file, atomic writes and file hashes."""
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Type

import cv2
import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')  # image files, lower case


class ImageReadError(OSError):
    """An image or annotation file is missing, unreadable or not what was expected."""


def image_tensor(rgb: np.ndarray, device: Optional[torch.device] = None) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1] on ``device`` (the networks' input)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float().div_(255)


def prepare_image(rgb: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, h, w) float32 in [0, 1] at ``size`` (bilinear): a frame as the networks take
    it, in evaluation and in the runtime."""
    if rgb.shape[:2] != tuple(size):
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    # NumPy, not torch: the runtime runs this in its reader thread, where a torch op would start a second
    # OpenMP team competing with the model's for the same cores.
    image = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    image /= 255
    return torch.from_numpy(image)


def file_sha256(path: str, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b''):
            digest.update(chunk)
    return digest.hexdigest()



def read_json(path: str, error_type: Type[Exception], missing: str) -> Any:
    """The JSON value in ``path``; ``error_type`` naming the file when it is absent (``path: missing``) or is not
    readable JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise error_type(f'{path}: {missing}') from None
    except (OSError, ValueError) as error:
        raise error_type(f'{path}: cannot read it as JSON ({error})') from error


def problems_summary(problems: Sequence[str], limit: int = 20) -> str:
    """The first ``limit`` problems, one per indented line, and how many more there are."""
    listed: List[str] = list(problems[:limit])
    more = f'\n  ... and {len(problems) - limit} more' if len(problems) > limit else ''
    return '\n  ' + '\n  '.join(listed) + more


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    A crash or Ctrl-C inside the block leaves ``path`` as it was (absent or the old file) and no
    temporary file behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{ext}', dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_folder(path: str) -> Iterator[str]:
    """Yield a temporary folder beside ``path`` to fill; it replaces ``path`` (and whatever was there) only if the
    block succeeds, and is removed when it fails."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f'.{os.path.basename(path)}.', dir=parent)
    try:
        yield work
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(work, path)
    finally:
        if os.path.exists(work):
            shutil.rmtree(work)


def write_json(path: str, value: Any, indent: Optional[int] = 1) -> None:
    """Write ``value`` as JSON to ``path`` atomically (the old file stays whole if this fails)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as file:
            json.dump(value, file, indent=indent)
            file.write('\n')


def ensure_writable_dir(path: str, error_type: Type[Exception] = OSError, what: str = 'files') -> None:
    """Create the folder ``path`` if needed; raise ``error_type`` naming it unless files can be created there."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write-test.', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise error_type(f'{path}: cannot write {what} there ({error.strerror or error})') from error


def read_image(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); raise ImageReadError naming the file otherwise."""
    if not os.path.isfile(path):
        raise ImageReadError(f'{path}: no such image file')
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f'{path}: cannot decode the image (corrupt or not an image)')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16')


def read_label_image(path: str, what: str = 'annotation') -> Tuple[str, np.ndarray, Optional[np.ndarray]]:
    """A label image as ``(PIL mode, pixels, palette)``; ImageReadError naming the file (as the ``what`` file).

    Indexed and grayscale images give (H, W) uint8 ids (grayscale values outside 0..255 are an error) and, for
    indexed ones, their (256, 3) palette; RGB / RGBA images give (H, W, 3) uint8 colours and no palette.
    """
    if not os.path.isfile(path):
        raise ImageReadError(f'{path}: no such {what} file')
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            palette = None
            if mode in ('RGB', 'RGBA'):
                pixels = np.array(image.convert('RGB'))
            elif mode == 'P':
                palette = np.zeros((256, 3), np.uint8)
                values = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
                palette[:len(values)] = values
                pixels = np.array(image)
            else:
                pixels = np.array(image.getchannel(0) if mode == 'LA' else image)
    except (OSError, ValueError) as error:
        raise ImageReadError(f'{path}: cannot read the {what} ({error})') from error
    if mode in GRAYSCALE_MODES:
        if pixels.max(initial=0) > 255 or pixels.min(initial=0) < 0:
            raise ImageReadError(f'{path}: label ids must lie in 0..255, found {pixels.min()}..{pixels.max()}')
        pixels = pixels.astype(np.uint8)
    return mode, pixels, palette


def read_label_png(path: str, require_indexed: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an annotation PNG as (ids (H, W) uint8, palette (256, 3) uint8 or None).

    With ``require_indexed`` an RGB or RGBA image is an error: DAVIS-style annotations are
    indexed (palette) PNGs whose pixel values are the object ids.
    """
    mode, ids, palette = read_label_image(path)
    if mode == 'P':
        return ids, palette
    if mode in ('L', 'I', 'I;16') and not require_indexed:
        return ids, None
    raise ImageReadError(
        f'{path}: expected an indexed (palette) PNG of object ids, got mode {mode!r}'
        + (' (an RGB colour mask?)' if mode in ('RGB', 'RGBA') else ''))


def write_label_png(path: str, ids: np.ndarray, palette: Optional[np.ndarray] = None) -> None:
    """Write ``ids`` (H, W) as an indexed PNG with ``palette`` (256, 3), atomically."""
    if ids.ndim != 2:
        raise ValueError(f'{path}: label map must be 2-D, got shape {ids.shape}')
    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))
    if palette is None:
        palette = default_palette()
    image.putpalette(  # turns the 'L' image into a 'P' one
        np.asarray(palette, np.uint8).reshape(-1).tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format='PNG')


def default_palette() -> np.ndarray:
    """The DAVIS colour palette (the PASCAL VOC bit-interleaved one), (256, 3) uint8."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        label, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= ((label >> 0) & 1) << shift
            green |= ((label >> 1) & 1) << shift
            blue |= ((label >> 2) & 1) << shift
            label >>= 3
        palette[index] = (red, green, blue)
    return palette
