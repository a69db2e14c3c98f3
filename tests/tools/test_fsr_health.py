"""scripts/fsr_health.py: dead F^SR must read as dead, live as live, and checkpoints in the run's order."""
import json

import cv2
import numpy as np
import pytest
import torch
import yaml

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from stdsr.archs.vsrnet_arch import VSRNet
from stdsr.tools import fsr_health
from stdsr.tools.diagnostics.fsr_health import run_checkpoints

NET = {'type': 'VSRNet', 'num_frame': 3, 'scale': 2, 'num_feat': 8, 'num_feat_hr': 4, 'residual': True,
       'kernel_sizes': [3, 3, 3]}


@pytest.fixture
def run(tmp_path):
    """A tiny residual VSRNet run: a live checkpoint at 100, a dead one (conv_hr far below zero) at 20, a latest."""
    (tmp_path / 'arch.yml').write_text(yaml.safe_dump(NET))
    models = tmp_path / 'models'
    models.mkdir()
    torch.manual_seed(0)
    net = VSRNet(**{k: v for k, v in NET.items() if k != 'type'})
    with torch.no_grad():
        net.conv_last.weight.normal_(0, 0.1)
    torch.save({'params': net.state_dict()}, models / 'net_g_100.pth')
    torch.save({'params': net.state_dict()}, models / 'net_g_latest.pth')
    with torch.no_grad():
        net.conv_hr.bias.fill_(-1e3)
    torch.save({'params': net.state_dict()}, models / 'net_g_20.pth')
    (models / 'notes.txt').write_text('not a checkpoint')
    lq = tmp_path / 'lq'
    lq.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(lq / f'{i:08d}.png'), rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    return tmp_path


def test_checkpoints_in_iteration_order_latest_last(run):
    assert [p.split('/')[-1] for p in run_checkpoints(str(run / 'models'))] == [
        'net_g_20.pth', 'net_g_100.pth', 'net_g_latest.pth']


def test_dead_and_live_features_and_json(run, capsys):
    out = run / 'health.json'
    assert fsr_health.main(['--arch-opt', str(run / 'arch.yml'), '--models', str(run / 'models'),
                            '--lq', str(run / 'lq'), '--json', str(out)]) == 0
    table = capsys.readouterr().out
    assert 'conv_last:input' in table and 'net_g_20.pth | 20 | 0.00 %' in table
    dead, live, latest = json.loads(out.read_text())['checkpoints']
    assert (dead['iteration'], live['iteration'], latest['iteration']) == (20, 100, None)
    # every unit below zero: nothing fires, every channel is dead, and the residual net outputs its bicubic base
    assert dead['positive'] == 0 and dead['dead_channels'] == dead['channels'] == 4
    assert dead['off_bicubic'] < 1e-6
    assert 0.05 < live['positive'] < 0.95 and live['std'] > 0 and live['off_bicubic'] > 1e-3
    assert live == {**latest, 'checkpoint': live['checkpoint'], 'iteration': 100}


def test_pre_activation_layer_and_bad_input(run, capsys):
    args = ['--arch-opt', str(run / 'arch.yml'), '--ckpt', str(run / 'models' / 'net_g_20.pth'), '--lq',
            str(run / 'lq'), '--layer', 'conv_hr']
    assert fsr_health.cli(args) == 0
    assert 'F^SR tap: `conv_hr`' in capsys.readouterr().out
    (run / 'taken.json').write_text('{}')
    assert fsr_health.cli(args + ['--json', str(run / 'taken.json')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and '--json' in err and 'taken.json' in err
    assert (run / 'taken.json').read_text() == '{}'
    assert fsr_health.cli(['--arch-opt', str(run / 'arch.yml'), '--models', str(run / 'nowhere'), '--lq',
                           str(run / 'lq')]) == 2
    assert '--models' in capsys.readouterr().err
