"""Batch mode for pipelines: many (video, mask, output) jobs in one process, the model loaded once.

The job list is a JSON or a CSV file (by extension):

- JSON: a list of jobs (or ``{"jobs": [...]}``), each ``{"video": ..., "mask": ..., "out": ...}`` with
  optional ``"overlay": "x.mp4"`` and ``"keyframes": {"40": "mask_40.png"}``;
- CSV: a header row naming the columns ``video,mask,out`` and optionally ``overlay``; one job per row.

Relative paths are taken from the list file's folder. A failing job is reported and skipped; the others run.

Under ``torchrun`` (``tools/dist_propagate.sh``) each process runs every ``WORLD_SIZE``-th job from its
``RANK`` on (one GPU each: ``cuda:LOCAL_RANK``), with no communication between them. With ``--resume`` a
killed launch started again skips the finished jobs and resumes the half-done ones (whatever the number of
processes); each process writes its part of the summary, and the last one to finish merges them.
"""
import csv
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log

from sfc_plugin.utils import write_json
from .backends import Backend
from .pipeline import propagate_video

REQUIRED_KEYS = ('video', 'mask', 'out')
OPTIONAL_KEYS = ('overlay', 'keyframes')


class JobListError(ValueError):
    """The job list cannot be read or a job in it is malformed."""


@dataclass
class Job:
    """One video: its first-frame mask, optional keyframe masks, output folder and overlay video."""
    video: str
    mask: str
    out: str
    overlay: Optional[str] = None
    keyframes: Dict[int, str] = field(default_factory=dict)

    def masks(self) -> Dict[int, str]:
        return {0: self.mask, **self.keyframes}


def _job(values: dict, where: str, base: str) -> Job:
    if not isinstance(values, dict):
        raise JobListError(f'{where}: a job must be an object with {", ".join(REQUIRED_KEYS)}, got {values!r}')
    unknown = sorted(set(values) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if unknown or missing:
        raise JobListError(f'{where}: ' + '; '.join(
            ([f'missing {", ".join(missing)}'] if missing else []) + ([f'unknown keys {unknown}'] if unknown else [])))
    keyframes = values.get('keyframes') or {}
    if not isinstance(keyframes, dict) or not all(str(frame).isdigit() for frame in keyframes):
        raise JobListError(f'{where}: keyframes must map frame indices to mask files, got {keyframes!r}')

    def resolve(path: Optional[str]) -> Optional[str]:
        return os.path.join(base, path) if path else None

    return Job(resolve(values['video']), resolve(values['mask']), resolve(values['out']),
               resolve(values.get('overlay')), {int(frame): resolve(path) for frame, path in keyframes.items()})


def read_job_list(path: str) -> List[Job]:
    """The jobs of a JSON or CSV list file; JobListError naming the file (and job) on bad input."""
    base = os.path.dirname(os.path.abspath(path))
    extension = os.path.splitext(path)[1].lower()
    if extension not in ('.json', '.csv'):
        raise JobListError(f'{path}: a job list is a .json or .csv file')
    try:
        with open(path, newline='') as f:
            if extension == '.json':
                entries = json.load(f)
                if isinstance(entries, dict):
                    entries = entries.get('jobs')
                if not isinstance(entries, list):
                    raise JobListError(f'{path}: expected a list of jobs (or {{"jobs": [...]}})')
                jobs = [_job(values, f'{path} job {i}', base) for i, values in enumerate(entries)]
            else:
                rows = list(csv.DictReader(f))
                jobs = [_job({key.strip(): (value or '').strip() for key, value in row.items() if key},
                             f'{path} line {i + 2}', base) for i, row in enumerate(rows)]
    except FileNotFoundError:
        raise JobListError(f'{path}: no such job list') from None
    except (OSError, ValueError, csv.Error) as error:
        if isinstance(error, JobListError):
            raise
        raise JobListError(f'{path}: cannot read the job list ({error})') from error
    if not jobs:
        raise JobListError(f'{path}: no jobs')
    return jobs


def launch_rank() -> Tuple[int, int, int]:
    """(rank, world size, local rank) of this process in a ``torchrun`` launch; (0, 1, 0) outside one."""
    try:
        rank, world, local = (int(os.environ.get(name, default)) for name, default in
                              (('RANK', 0), ('WORLD_SIZE', 1), ('LOCAL_RANK', 0)))
    except ValueError:
        raise JobListError('RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)') from None
    if not 0 <= rank < world:
        raise JobListError(f'RANK {rank} is not within WORLD_SIZE {world}')
    return rank, world, local


def run_batch(backend: Backend, jobs: List[Job], summary: Optional[str] = None, resume: bool = False,
              max_frames: Optional[int] = None, progress: bool = True, rank: int = 0, world_size: int = 1) -> dict:
    """Run this process's jobs (every ``world_size``-th from ``rank`` on) with one backend; a job that fails is
    reported and skipped.

    Returns ``{'jobs': [...], 'succeeded', 'failed', 'seconds', 'backend', ...}`` for this process's jobs, each
    with its index in the list, status ('ok' or 'failed'), error message and run summary. It is written to
    ``summary`` (one process), or to ``summary``'s part for this rank, merged into ``summary`` once every
    part of the launch is there (see :func:`merge_summaries`).
    """
    start = time.perf_counter()
    results = []
    mine = [(index, job) for index, job in enumerate(jobs) if index % world_size == rank]
    for number, (index, job) in enumerate(mine, 1):
        print_log(f'Job {number}/{len(mine)} (list entry {index}): {job.video}', logger='current')
        entry = {'index': index, 'video': job.video, 'mask': job.mask, 'out': job.out, 'overlay': job.overlay,
                 'keyframes': {str(frame): path for frame, path in job.keyframes.items()}}
        try:
            result = propagate_video(backend, job.video, job.masks(), job.out, overlay=job.overlay, resume=resume,
                                     max_frames=max_frames, progress=progress)
            entry.update(status='ok', error=None, frames=result['frames'], written_frames=result['written_frames'],
                         seconds=result['seconds'], result=result)
        except Exception as error:  # a failing job is reported, the others go on
            print_log(f'Job {number}/{len(mine)} failed: {error}', logger='current', level=40)
            entry.update(status='failed', error=f'{type(error).__name__}: {error}')
        results.append(entry)
    failed = sum(entry['status'] == 'failed' for entry in results)
    description = backend.describe()
    report = {'jobs': results, 'succeeded': len(results) - failed, 'failed': failed,
              'seconds': round(time.perf_counter() - start, 3), 'rank': rank, 'world_size': world_size,
              'backend': description['backend'], 'execution_provider': description['execution_provider'],
              'device': description['device'], 'model': description['model'], 'settings': description['settings']}
    if summary and world_size == 1:
        write_json(summary, report, indent=2)
    elif summary:
        write_json(summary_part(summary, rank, world_size), report, indent=2)
        merge_summaries(summary, world_size)
    return report


def summary_part(summary: str, rank: int, world_size: int) -> str:
    """The file of rank ``rank``'s part of ``summary``."""
    stem, extension = os.path.splitext(summary)
    return f'{stem}.part-{rank}-of-{world_size}{extension or ".json"}'


def merge_summaries(summary: str, world_size: int) -> bool:
    """Merge the parts of ``summary`` into it (jobs in list order) if all ``world_size`` are there; say if so.

    Every process calls it after writing its part: the last one merges a complete summary (an earlier merge
    from parts of a previous launch is overwritten by it).
    """
    parts = [summary_part(summary, rank, world_size) for rank in range(world_size)]
    if not all(os.path.isfile(part) for part in parts):
        return False
    reports = []
    for part in parts:
        with open(part) as f:
            reports.append(json.load(f))
    merged = dict(reports[0], jobs=sorted((job for report in reports for job in report['jobs']),
                                         key=lambda job: job['index']),
                  succeeded=sum(r['succeeded'] for r in reports), failed=sum(r['failed'] for r in reports),
                  seconds=max(r['seconds'] for r in reports), rank=None,
                  devices=[r['device'] for r in reports])
    write_json(summary, merged, indent=2)
    return True
