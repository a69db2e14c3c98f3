"""scripts/check_gpu.py: the pass/fail table over CUDA paths, exercised with the CPU as a stand-in device."""
import json

import pytest
import torch

from e2e_helpers import load_script
from stdsr.tools import check_gpu as gpu_check


pytestmark = pytest.mark.usefixtures('one_thread')


def test_without_cuda_it_says_so_and_exits_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert load_script('check_gpu').main([]) == 0
    out = capsys.readouterr().out
    assert 'No CUDA device is visible' in out and '| check |' not in out


def test_table_with_a_cpu_stand_in(tmp_path, capsys):
    rc = gpu_check.main(['--device', 'cpu', '--only', 'fp32', 'amp-fp16', '--in-process', '--iters', '2',
                         '--work-dir', str(tmp_path), '--json', str(tmp_path / 'rows.json')])
    out = capsys.readouterr().out
    rows = {row['check']: row for row in json.loads((tmp_path / 'rows.json').read_text())}
    assert rc == 0
    assert rows['fp32']['status'] == 'pass' and 'ms/step' in rows['fp32']['detail']
    assert rows['amp-fp16'] == {'check': 'amp-fp16', 'status': 'skip', 'seconds': 0.0, 'detail': 'needs CUDA'}
    assert '| fp32 | PASS |' in out and '| amp-fp16 | SKIP |' in out
    assert list((tmp_path / 'runs' / 'fp32' / 'training_states').glob('*.state'))  # it saved a training state


def test_a_failing_check_is_a_row_and_exit_code_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, 'CUDA_ONLY', set())  # run fp16 on the CPU: training refuses it at start-up
    rc = gpu_check.main(['--device', 'cpu', '--only', 'amp-fp16', '--in-process', '--work-dir', str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "| amp-fp16 | FAIL |" in out and 'OptionError' in out and 'needs CUDA' in out


@pytest.mark.slow
def test_torchrun_check_runs_two_processes_and_compares_their_ema(tmp_path):
    row = gpu_check.run_check('torchrun-2', 'cpu', str(tmp_path), iters=2, timeout=300)
    assert row['status'] == 'pass', row['detail']
    assert '2 ranks (gloo), EMA equal' in row['detail']


def test_gpu_dependent_skips(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: (7, 0))
    monkeypatch.setattr(torch.version, 'hip', None)
    assert gpu_check.skip_reason('torchrun-2', 'cuda') == 'needs 2 GPUs, 1 visible'
    assert 'no native bf16' in gpu_check.skip_reason('amp-bf16', 'cuda')
    assert gpu_check.skip_reason('amp-fp16', 'cuda') is None
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: (9, 0))
    assert gpu_check.skip_reason('torchrun-2', 'cuda') is None and gpu_check.skip_reason('amp-bf16', 'cuda') is None

