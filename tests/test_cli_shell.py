"""The console scripts' shared error shell: user errors and Ctrl-C as one line with their exit status."""
import pytest

from sfc_plugin.deploy import cli as export_cli
from sfc_plugin.utils import CheckpointMismatchError
from sfc_plugin.utils.cli import run_command


def raises(error: BaseException):
    def command() -> int:
        raise error
    return command


@pytest.mark.parametrize('error', [FileNotFoundError('a.png: no such file'), ValueError('a.png: 3 channels'),
                                   ImportError('onnx is not installed'), CheckpointMismatchError('x.pth', ['head.weight'], [], [])])
def test_user_errors_are_one_line_and_status_1(capsys, error):
    assert run_command('sfc-tool', raises(error)) == 1
    assert capsys.readouterr().err == f'sfc-tool: error: {error}\n'


def test_ctrl_c_is_status_130_and_other_errors_propagate(capsys):
    assert run_command('sfc-tool', raises(KeyboardInterrupt()), interrupted='interrupted; nothing lost') == 130
    assert capsys.readouterr().err == 'sfc-tool: interrupted; nothing lost\n'
    with pytest.raises(RuntimeError, match='a bug'):
        run_command('sfc-tool', raises(RuntimeError('a bug')))
    assert run_command('sfc-tool', lambda: 3) == 3


def test_sfc_export_reports_ctrl_c(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(export_cli, 'export_onnx', lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert export_cli.main(['onnx', 'config.py', '--out', str(tmp_path)]) == 130
    assert 'sfc-export onnx: interrupted; an export folder is complete only once its meta.json' in capsys.readouterr().err
