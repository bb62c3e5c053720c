"""Benchmark results as data: a benchmark writes one JSON record (what was measured, on which machine,
at which commit, with which command) and ``tools/write_results.py`` renders every record of a folder as
Markdown, so that a results table in the docs is never typed by hand and never outlives its numbers.

A record::

    title: str                     # the table's heading
    description: str               # what the rows are (data, split, protocol), Markdown
    command: str                   # the command line that produced it
    commit: str                    # git commit of the tree measured ('+dirty' when it had changes)
    machine: dict                  # date, CPU (model, ISA level, AMX), torch version, threads
    columns: [[key, header], ...]  # key: a path into a row, 'a/b' for row['a']['b']
    rows: [dict, ...]
"""
import datetime
import glob
import os
import shlex
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

import torch

from sfc_plugin.utils import atomic_path, read_json
from .common import cpu_info


class ResultError(ValueError):
    """A result record that cannot be rendered; the message names the file."""


def git_commit(path: str = '.') -> str:
    """The commit checked out at ``path`` ('+dirty' if tracked files differ from it), or 'unknown'."""
    try:
        commit = subprocess.run(['git', '-C', path, 'rev-parse', '--short=10', 'HEAD'], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', '-C', path, 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('+dirty' if dirty else '')


def machine(threads: Optional[int] = None) -> dict:
    """When and where a record was measured."""
    return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), **cpu_info(),
                torch=torch.__version__, threads=threads if threads is not None else torch.get_num_threads())


def make_record(title: str, description: str, columns: Sequence[Tuple[str, str]], rows: List[dict],
                command: Optional[str] = None, threads: Optional[int] = None) -> dict:
    """A result record of ``rows`` measured now, by this process's command line (default)."""
    source = os.path.dirname(os.path.abspath(__file__))
    return dict(title=title, description=description,
                command=command if command is not None else ' '.join(shlex.quote(arg) for arg in (
                    ['python'] if sys.argv[0].endswith('.py') else []) + sys.argv),
                commit=git_commit(source), machine=machine(threads), columns=[list(column) for column in columns],
                rows=rows)


def _lookup(row: dict, key: str):
    value = row
    for part in key.split('/'):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _cell(value) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.1f}'
    if isinstance(value, (list, tuple)):
        return ', '.join(str(item) for item in value) or '-'
    return str(value).replace('|', '\\|')


def render_markdown(record: dict, path: str = '<record>') -> str:
    """The record as a Markdown section: heading, description, the table, then machine, commit and command."""
    missing = [key for key in ('title', 'columns', 'rows', 'machine', 'command', 'commit') if key not in record]
    if missing:
        raise ResultError(f'{path}: not a result record, missing {", ".join(missing)}')
    columns = record['columns']
    lines = [f'## {record["title"]}', '']
    if record.get('description'):
        lines += [record['description'], '']
    lines.append('| ' + ' | '.join(header for _, header in columns) + ' |')
    lines.append('|' + ' --- |' * len(columns))
    for row in record['rows']:
        lines.append('| ' + ' | '.join(_cell(_lookup(row, key)) for key, _ in columns) + ' |')
    info = record['machine']
    lines += ['', f'Measured {info.get("date", "?")} on {info.get("cpu_model", "?")} '
                  f'({info.get("cpu_capability", "?")}, AMX {"yes" if info.get("amx") else "no"}), '
                  f'torch {info.get("torch", "?")}, {info.get("threads", "?")} thread(s), commit `{record["commit"]}`:',
              '', '```bash', record['command'], '```', '']
    return '\n'.join(lines)


def render_folder(folder: str) -> List[str]:
    """Render every ``*.json`` record of ``folder`` to ``<name>.md`` beside it; returns the files written."""
    written = []
    for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
        record = read_json(path, ResultError, 'no such result record')
        target = os.path.splitext(path)[0] + '.md'
        text = ('<!-- Written by tools/write_results.py from '
                f'{os.path.basename(path)}; edit the benchmark, not this file. -->\n\n' + render_markdown(record, path))
        with atomic_path(target) as tmp:
            with open(tmp, 'w') as file:
                file.write(text)
        written.append(target)
    return written
