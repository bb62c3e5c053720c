"""Result records -> Markdown: the docs' tables are rendered from the benchmarks' JSON, never typed."""
import json
import os

import pytest

from sfc_plugin.benchmarks.results import ResultError, make_record, render_folder, render_markdown
from sfc_plugin.utils import write_json


def test_record_renders_every_row_and_says_where_it_was_measured(tmp_path):
    rows = [dict(model='box prior', pck={'0.1': 52.66}), dict(model='features', pck={'0.1': None})]
    record = make_record('Semantic pairs', 'report split', [('model', 'model'), ('pck/0.1', 'PCK@0.1')], rows,
                         command='python tools/benchmark_pairs.py x.py', threads=1)
    assert record['machine']['threads'] == 1 and record['machine']['cpu_model']
    write_json(str(tmp_path / 'semantic.json'), record)
    written = render_folder(str(tmp_path))
    assert written == [str(tmp_path / 'semantic.md')]
    text = open(written[0]).read()
    assert '| model | PCK@0.1 |' in text
    assert '| box prior | 52.7 |' in text and '| features | - |' in text
    assert 'python tools/benchmark_pairs.py x.py' in text and record['machine']['cpu_model'] in text
    assert json.load(open(tmp_path / 'semantic.json')) == record


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text(json.dumps(dict(title='x')))
    with pytest.raises(ResultError, match='broken.json: not a result record, missing columns'):
        render_folder(str(tmp_path))
    assert not os.path.exists(tmp_path / 'broken.md')
    with pytest.raises(ResultError, match='<record>'):
        render_markdown({})
