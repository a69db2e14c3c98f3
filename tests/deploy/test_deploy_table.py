"""The deployment table: one row per student with every column, ratios computed from the measured times."""
import json
import os

import cv2
import pytest

from stdsr.tools import deployment_table
from stdsr.utils.cli import run_cli
from test_deploy_export import tiny_model, write_ckpt_and_arch
from test_deploy_inference import write_frames

pytest.importorskip('onnxruntime')

FAKE_MS = {('torch', 1): 400., ('onnx_fp32', 1): 200., ('onnx_int8', 1): 100., ('torch', 3): 160.,
           ('onnx_fp32', 3): 80., ('onnx_int8', 3): 64.}


def make_demo(root):
    """A demo tree: LR test clips with their x4 GT, LR training clips for the calibration, a real-video GT clip."""
    for i in range(2):
        lr = write_frames(root / 'test' / 'BIx4' / f'clip{i}', num=4, size=(12, 16), seed=i)
        os.makedirs(root / 'test' / 'GT' / f'clip{i}')
        for name in sorted(os.listdir(lr)):
            img = cv2.resize(cv2.imread(os.path.join(lr, name)), (64, 48), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(root / 'test' / 'GT' / f'clip{i}' / name), img)
        write_frames(root / 'train' / 'BIx4' / f'clip{i}', num=5, size=(24, 28), seed=10 + i)
    write_frames(root / 'real' / 'clip0', num=3, size=(48, 64), seed=5)


@pytest.fixture
def demo_args(tmp_path):
    make_demo(tmp_path / 'demo')
    ckpt, arch = write_ckpt_and_arch(tmp_path, tiny_model('VSRNet', seed=3))
    return ['--ckpt', f'tiny={ckpt}', '--arch-opt', arch, '--demo', str(tmp_path / 'demo'), '--real',
            str(tmp_path / 'demo' / 'real'), '--real-frames', '2', '--lr-size', '16', '20', '--repeats', '1',
            '--warmup', '0', '--threads', '3', '--calib-windows', '2']


def test_table_rows_and_ratios_come_from_the_measurements(demo_args, tmp_path, monkeypatch):
    calls = []

    def fake_torch(net, window, size, threads, repeats, warmup):
        calls.append(('torch', threads, tuple(size)))
        return FAKE_MS['torch', threads]

    def fake_onnx(path, window, size, threads, repeats, warmup):
        key = 'onnx_int8' if path.endswith('_int8.onnx') else 'onnx_fp32'
        calls.append((key, threads, tuple(size)))
        return FAKE_MS[key, threads]

    monkeypatch.setattr(deployment_table.latency, 'torch_ms_per_frame', fake_torch)
    monkeypatch.setattr(deployment_table.latency, 'onnx_ms_per_frame', fake_onnx)
    out = tmp_path / 'table'
    assert deployment_table.main(demo_args + ['--output', str(out)], log=lambda *_: None) == 0
    assert sorted(calls) == sorted((k, t, (16, 20)) for k, t in FAKE_MS)
    assert sorted(os.listdir(out)) == ['deployment_table.json', 'deployment_table.md', 'tiny.onnx', 'tiny.onnx.json',
                                       'tiny_int8.onnx', 'tiny_int8.onnx.json']
    report = json.loads((out / 'deployment_table.json').read_text())
    (row, ) = report['rows']
    assert row['label'] == 'tiny' and row['params'] > 0 and row['notes'] == []
    assert row['speedup']['1'] == {'torch': 1.0, 'onnx_fp32': 2.0, 'onnx_int8': 4.0}
    assert row['speedup']['all'] == {'torch': 1.0, 'onnx_fp32': 2.0, 'onnx_int8': 2.5}
    assert row['size_kb']['onnx_fp32'] == pytest.approx(os.path.getsize(out / 'tiny.onnx') / 1024)
    for name in ('demo', 'real'):
        psnr = row[f'psnr_{name}']
        assert set(psnr) == {'torch', 'onnx_fp32', 'onnx_int8'} and all(10 < v < 100 for v in psnr.values())
        assert abs(psnr['torch'] - psnr['onnx_fp32']) < 0.01  # fp32 export is the same network
        assert row[f'int8_drop_{name}'] == pytest.approx(psnr['onnx_fp32'] - psnr['onnx_int8'])
    md = (out / 'deployment_table.md').read_text()
    latency_row = [line for line in md.splitlines() if line.startswith('| tiny |') and 'x)' in line]
    assert latency_row == ['| tiny | 400.0 | 200.0 (2.00x) | 100.0 (4.00x) | 160.0 | 80.0 (2.00x) | 64.0 (2.50x) |']
    assert '3 threads' in md and 'load average' in md


def test_one_thread_is_timed_once_and_drops_keep_three_decimals(demo_args, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(deployment_table.latency, 'torch_ms_per_frame',
                        lambda net, window, size, threads, *_: calls.append(('torch', threads)) or 300.)
    monkeypatch.setattr(deployment_table.latency, 'onnx_ms_per_frame',
                        lambda path, window, size, threads, *_: calls.append((path, threads)) or 150.)
    argv = list(demo_args)
    argv[argv.index('--threads') + 1] = '1'  # "all threads" is then the 1-thread setting
    out = tmp_path / 'table'
    assert deployment_table.main(argv + ['--output', str(out)], log=lambda *_: None) == 0
    assert len(calls) == 3 and {t for _, t in calls} == {1}
    report = json.loads((out / 'deployment_table.json').read_text())
    (row, ) = report['rows']
    assert row['ms']['all'] == row['ms']['1'] and row['speedup']['1']['onnx_fp32'] == 2.0
    md = (out / 'deployment_table.md').read_text().splitlines()
    assert [line for line in md if 'thread' in line and line.startswith('| student')] == [
        '| student | 1 thread: PyTorch ms | fp32 ORT | INT8 ORT |']
    assert '| tiny | 300.0 | 150.0 (2.00x) | 150.0 (2.00x) |' in md
    (quality, ) = [line for line in md if line.startswith('| tiny |') and 'x)' not in line]
    assert quality.split(' | ')[-2] == f"{row['int8_drop_demo']:.3f}"
    assert quality.split(' | ')[-1] == f"{row['int8_drop_real']:.3f} |"


def test_bad_argument_is_a_one_line_error_and_writes_nothing(demo_args, tmp_path, capsys):
    out = tmp_path / 'table'
    argv = [a if a != str(tmp_path / 'demo' / 'real') else str(tmp_path / 'nope') for a in demo_args]
    assert run_cli('deployment_table', deployment_table.main, argv + ['--output', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('deployment_table: error:') and 'nope' in err and '\n' not in err
    assert not out.exists()
    (out / 'old').mkdir(parents=True)
    assert run_cli('deployment_table', deployment_table.main, demo_args + ['--output', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert 'not empty' in err and '\n' not in err and os.listdir(out) == ['old']
