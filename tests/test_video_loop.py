"""The one video loop (``VideoLabelLoop`` + per-task codecs): evaluation and ``sfc-propagate`` produce the same
label maps from the same first mask and frames, and the 255 rule holds both ways (a benchmark's void, a user's
object)."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.apis.inference import build_model
from sfc_plugin.datasets import DAVISDataset, JHMDBDataset
from sfc_plugin.propagation import KeypointCodec, MaskCodec, label_values_of
from sfc_plugin.propagation.upsampling import upsample_labels
from sfc_plugin.runtime import propagate_video
from sfc_plugin.runtime.backends import TorchBackend
from sfc_plugin.runtime.propagator import VideoPropagator
from sfc_plugin.utils import prepare_image, read_image, read_label_png, write_label_png
from video_fixtures import make_davis, make_jhmdb

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')
NUM_FRAMES = 6


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path_factory.mktemp('tiny') / 'tiny.pth'))
    return build_model(TINY_CONFIG, checkpoint)[0]


@pytest.fixture
def davis(tmp_path):
    root = str(tmp_path / 'davis')
    make_davis(root, {'a': (NUM_FRAMES, 40, 56, 2)})
    return root


def first_mask_path(root: str) -> str:
    return os.path.join(root, 'Annotations', '480p', 'a', '00000.png')


def frame_dir(root: str) -> str:
    return os.path.join(root, 'JPEGImages', '480p', 'a')


def evaluate(model, root: str) -> np.ndarray:
    return model.propagate_video(DAVISDataset(data_root=root)[0])['pred_ids']


def run_runtime(model, root: str, mask: str, out: str) -> np.ndarray:
    summary = propagate_video(TorchBackend(model, 'cpu'), frame_dir(root), {0: mask}, out, progress=False)
    assert summary['complete']
    return np.stack([np.array(Image.open(os.path.join(out, f'{i:05d}.png'))) for i in range(NUM_FRAMES)])


def with_void_border(ids: np.ndarray) -> np.ndarray:
    """Object 1's outer 2-pixel border marked 255, as DAVIS marks object borders."""
    border = (np.roll(ids == 1, 2, axis=1) | np.roll(ids == 1, -2, axis=0)) & (ids == 0)
    assert border.any()
    return np.where(border, 255, ids).astype(np.uint8)


@pytest.mark.slow
def test_evaluation_and_the_runtime_write_the_same_label_maps(model, davis, tmp_path):
    expected = evaluate(model, davis)
    assert set(np.unique(expected[1:])) == {0, 1, 2}
    np.testing.assert_array_equal(run_runtime(model, davis, first_mask_path(davis), str(tmp_path / 'out')), expected)


@pytest.mark.slow
def test_guided_upsampling_in_evaluation_and_the_runtime(model, davis, tmp_path, monkeypatch):
    """With guide_radius both decode each frame guided by the frame itself at the masks' size, into the same maps;
    the propagated labels are the bilinear run's."""
    bilinear = evaluate(model, davis)
    monkeypatch.setattr(model, 'settings', model.settings.replace(guide_radius=1.0))
    guided = evaluate(model, davis)
    assert (guided[1:] != bilinear[1:]).sum() > 0
    np.testing.assert_array_equal(run_runtime(model, davis, first_mask_path(davis), str(tmp_path / 'out')), guided)
    # The same labels, decoded by hand: the core's soft labels upsampled guided by each frame.
    backend = TorchBackend(model, 'cpu')
    first, _ = read_label_png(first_mask_path(davis))
    codec = MaskCodec.for_benchmark(first)
    video = VideoPropagator(backend, codec)
    for index, name in enumerate(sorted(os.listdir(frame_dir(davis)))):
        rgb = read_image(os.path.join(frame_dir(davis), name))
        host = video.step(prepare_image(rgb, backend.input_size(rgb.shape[:2])), first if index == 0 else None, rgb)
        if index:
            soft, frame = torch.from_numpy(host.numpy()[1]), prepare_image(rgb, rgb.shape[:2])
            upsampled = upsample_labels(soft, rgb.shape[:2], frame, guide_radius=1.0)
            np.testing.assert_array_equal(np.array(codec.label_values)[upsampled.argmax(0).numpy()], guided[index])
    with pytest.raises(ValueError, match='needs the frame as rgb'):
        video.step(prepare_image(rgb, backend.input_size(rgb.shape[:2])))


@pytest.mark.slow
def test_255_in_a_benchmark_annotation_is_void(model, davis, tmp_path):
    ids, palette = read_label_png(first_mask_path(davis))
    as_background = evaluate(model, davis)
    write_label_png(first_mask_path(davis), with_void_border(ids), palette)
    predicted = evaluate(model, davis)
    # Frame 0 keeps its annotation (void included, the metrics skip it); void propagates as background.
    np.testing.assert_array_equal(predicted[0], with_void_border(ids))
    np.testing.assert_array_equal(predicted[1:], as_background[1:])
    # The runtime's propagator over the same loop, given the benchmark rule, writes the same maps.
    backend = TorchBackend(model, 'cpu')
    first, _ = read_label_png(first_mask_path(davis))
    video = VideoPropagator(backend, MaskCodec.for_benchmark(first))
    frames = sorted(os.listdir(frame_dir(davis)))
    runtime = []
    for index, name in enumerate(frames):
        rgb = read_image(os.path.join(frame_dir(davis), name))
        image = prepare_image(rgb, backend.input_size(rgb.shape[:2]))
        runtime.append(video.step(image, first if index == 0 else None).numpy()[0])
    np.testing.assert_array_equal(np.stack(runtime), predicted)


@pytest.mark.slow
def test_255_in_a_users_binary_mask_is_the_object(model, davis, tmp_path):
    ids, _ = read_label_png(first_mask_path(davis))
    binary = tmp_path / 'binary.png'
    Image.fromarray(np.where(ids == 1, 255, 0).astype(np.uint8)).save(binary)  # grayscale 0 / 255
    one_object = tmp_path / 'one_object.png'
    Image.fromarray(np.where(ids == 1, 1, 0).astype(np.uint8)).save(one_object)
    tracked_255 = run_runtime(model, davis, str(binary), str(tmp_path / 'out255'))
    tracked_1 = run_runtime(model, davis, str(one_object), str(tmp_path / 'out1'))
    assert set(np.unique(tracked_255[1:])) == {0, 255}
    np.testing.assert_array_equal(tracked_255, np.where(tracked_1 == 1, 255, 0))
    # The evaluation of the same object (id 1 in a DAVIS annotation) predicts the same pixels.
    write_label_png(first_mask_path(davis), np.where(ids == 1, 1, 0).astype(np.uint8))
    np.testing.assert_array_equal(evaluate(model, davis)[1:] == 1, tracked_255[1:] == 255)


def test_mask_codecs_decide_the_255_rule():
    ids = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    benchmark, user = MaskCodec.for_benchmark(ids), MaskCodec.for_user_masks([ids])
    assert benchmark.label_values == [0, 1, 2] and user.label_values == [0, 1, 2, 255]
    soft = benchmark.encode(ids, (2, 3))  # feature size = frame size: the one-hot map itself
    assert soft.shape == (3, 2, 3) and soft[0, 0, 2] == 1 and soft[:, 0, 2].sum() == 1
    assert user.encode(ids, (2, 3))[3, 0, 2] == 1
    np.testing.assert_array_equal(user.decode(user.encode(ids, (2, 3))).numpy(), ids)
    assert label_values_of([np.array([[3, 3]]), np.array([[5, 255]])]) == [0, 3, 5, 255]
    assert label_values_of([np.array([[3, 255]])], void_id=255) == [0, 3]


def test_keypoint_codec_round_trip():
    keypoints = np.array([[17.0, 9.0], [40.0, 31.0], [30.0, 36.0]], np.float32)  # x, y in 64 x 48 frame pixels
    codec = KeypointCodec(frame_size=(48, 64), network_size=(96, 128), stride=8, sigma=0.5, topk=1)
    heatmaps = codec.encode(keypoints, (12, 16))
    assert heatmaps.shape == (4, 12, 16) and heatmaps.dtype == torch.float32
    # topk=1 decodes each joint to its peak cell, the nearest: within half a cell (2 frame pixels here)
    assert np.abs(codec.decode(heatmaps) - keypoints).max() <= 2


def test_mask_settings_are_refused_for_keypoints(tmp_path):
    """JHMDB's joint heatmaps have no background channel for the dilution gain to leave alone, and are decoded to
    joints, not upsampled."""
    root = str(tmp_path / 'jhmdb')
    make_jhmdb(root, {'run_1': (3, 40, 56)})
    model, _ = build_model(TINY_CONFIG, None, cfg_options={'model.propagation.dilution_gain': 1.5})
    with pytest.raises(ValueError, match='dilution_gain is for masks'):
        model.propagate_video(JHMDBDataset(data_root=root, ann_file='testlist_split1.txt')[0])
    model, _ = build_model(TINY_CONFIG, None, cfg_options={'model.propagation.guide_radius': 1.0})
    with pytest.raises(ValueError, match='guide_radius upsamples masks'):
        model.propagate_video(JHMDBDataset(data_root=root, ann_file='testlist_split1.txt')[0])
