"""ONNX export of every shipped student (tiny random-weight networks): parity, sidecar, refusals, bad input."""
import json
import os
from os import path as osp

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import stdsr  # noqa: F401  (registers the archs)
from e2e_helpers import stand_in_for_trained
from basicsr.archs import build_network
from stdsr.deploy.onnx_export import ExportError, export_student
from stdsr.deploy.sidecar import sidecar_path
from stdsr.deploy.onnx_session import OnnxStudent
from stdsr.archs.clip_runner import run_clip
from stdsr.tools import export_onnx
from stdsr.utils.cli import run_cli
from stdsr.inference.model_loading import LoadedModel

pytest.importorskip('onnxruntime')

TINY = {
    'VESPCN': dict(type='VESPCN', num_frame=5, num_feat=8, num_block=1, num_feat_hr=4, num_feat_flow=4, residual=True),
    'VSRNet': dict(type='VSRNet', num_frame=3, num_feat=8, num_feat_hr=4, fusion='B', residual=True,
                   kernel_sizes=[5, 3, 3]),
    'FastDVDnetSR': dict(type='FastDVDnetSR', num_frame=5, num_feat=4, num_feat_hr=4, residual=True),
    'EDVR': dict(type='EDVR', num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1,
                 num_reconstruct_block=1, with_tsa=False),
}
SMALL = (22, 26)  # parity size of the tests: neither trace size, so a shape baked into the graph would show


def tiny_model(kind, seed=0, net_opt=None):
    torch.manual_seed(seed)
    net_opt = dict(net_opt or TINY[kind])
    net = stand_in_for_trained(build_network(dict(net_opt))).eval().requires_grad_(False)
    if kind == 'EDVR':  # offsets far from zero, so the deformable sampling is really exercised
        for name, param in net.named_parameters():
            if 'conv_offset' in name:
                param.data.normal_(0, 0.05)
    window = net_opt.get('num_frame', 5)
    return LoadedModel(label=f'tiny_{kind}', net=net, mode='sliding', window=window, net_opt=net_opt)


def write_ckpt_and_arch(tmp_path, model, scale=4, name='tiny'):
    ckpt, arch = tmp_path / f'{name}.pth', tmp_path / f'{name}.yml'
    torch.save({'params': model.net.state_dict()}, ckpt)
    arch.write_text(yaml.safe_dump({'scale': scale, 'network_g': model.net_opt}))
    return str(ckpt), str(arch)


@pytest.mark.parametrize('kind', sorted(TINY))
def test_export_matches_pytorch_at_other_sizes(kind, tmp_path, one_thread):
    model = tiny_model(kind)
    out = str(tmp_path / f'{kind}.onnx')
    meta = export_student(model, out, parity_size=SMALL, log=lambda *_: None)
    assert osp.isfile(out) and not osp.exists(osp.join(tmp_path, f'.{kind}.onnx.partial'))
    with open(sidecar_path(out)) as f:
        saved = json.load(f)
    assert saved == meta
    assert (saved['scale'], saved['window']) == (4, TINY[kind].get('num_frame', 5))
    assert saved['network_g'] == TINY[kind] and saved['opset'] == (19 if kind == 'EDVR' else 17)
    assert saved['parity']['max_abs_diff'] < 1e-4 and saved['parity']['psnr_db'] > 80
    # the graph is dynamic: a longer clip at another size (batched windows of chunked inference) still matches
    student = OnnxStudent(out)
    lq = torch.rand(1, 7, 3, 20, 28)
    got = student.infer(lq, chunk=3)
    with torch.no_grad():
        ref = run_clip(model.net, lq, 'sliding', model.window)
    assert got.shape == ref.shape == (1, 7, 3, 80, 112)
    assert float((got - ref).abs().max()) < 1e-4


def test_recurrent_student_is_refused_in_one_line(tmp_path):
    net = build_network(dict(type='BasicVSR', num_feat=4, num_block=1, spynet_path=None)).eval()
    model = LoadedModel(label='bvsr', net=net, mode='recurrent', net_opt={'type': 'BasicVSR'})
    out = tmp_path / 'bvsr.onnx'
    with pytest.raises(ExportError, match='recurrent') as err:
        export_student(model, str(out))
    assert '\n' not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_deformable_conv_below_opset_19_names_the_operator(tmp_path):
    with pytest.raises(ExportError, match=r'torchvision::deform_conv2d.*--opset 19'):
        export_student(tiny_model('EDVR'), str(tmp_path / 'edvr.onnx'), opset=17)
    assert os.listdir(tmp_path) == []


def test_parity_failure_writes_nothing(tmp_path, one_thread):
    out = tmp_path / 'vsrnet.onnx'
    with pytest.raises(ExportError, match='fails parity'):
        export_student(tiny_model('VSRNet'), str(out), parity_size=SMALL, max_abs=-1.0, log=lambda *_: None)
    assert os.listdir(tmp_path) == []  # neither the model, its sidecar nor the temporary file


class DriftingExport(nn.Module):
    """Exports as a different network than it runs eagerly: what a parity check must catch."""

    def forward(self, x):
        centre = x[:, x.shape[1] // 2]
        up = nn.functional.interpolate(centre, scale_factor=2, mode='nearest')
        return up + (0.0 if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() else 0.1)


def test_parity_catches_an_export_that_differs(tmp_path):
    model = LoadedModel(label='drift', net=DriftingExport(), mode='sliding', window=3, net_opt={'type': 'Drift'})
    with pytest.raises(ExportError, match='fails parity'):
        export_student(model, str(tmp_path / 'drift.onnx'), parity_size=SMALL, log=lambda *_: None)
    assert os.listdir(tmp_path) == []


def test_cli_exports_a_checkpoint_and_refuses_an_existing_output(tmp_path, capsys, one_thread):
    ckpt, arch = write_ckpt_and_arch(tmp_path, tiny_model('VSRNet'))
    out = tmp_path / 'out' / 'student.onnx'
    argv = ['--ckpt', ckpt, '--arch-opt', arch, '--output', str(out), '--parity-size', '22x26', '--repeats', '1',
            '--time-size', '16x16', '--threads', '1']
    assert run_cli('export_onnx', export_onnx.main, argv) == 0
    printed = capsys.readouterr().out
    assert 'parity' in printed and 'ms/frame at 16x16 LR -> 64x64' in printed
    before = out.read_bytes()
    assert run_cli('export_onnx', export_onnx.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('export_onnx: error:') and 'exists' in err and str(out) in err and '\n' not in err
    assert out.read_bytes() == before
    bad = tmp_path / 'student.txt'
    assert run_cli('export_onnx', export_onnx.main, argv[:4] + ['--output', str(bad)]) == 2
    assert '.onnx' in capsys.readouterr().err and not bad.exists()
