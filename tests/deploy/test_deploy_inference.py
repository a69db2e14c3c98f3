"""scripts/inference_vsr.py --onnx: the chunked inference of the PyTorch path in onnxruntime, and its bad input."""
import json
import os
import shutil
from os import path as osp

import cv2
import numpy as np
import pytest
import yaml

from e2e_helpers import load_script
from stdsr.deploy.onnx_export import export_student
from stdsr.deploy.sidecar import sidecar_path
from stdsr.utils.cli import run_cli
from test_deploy_export import tiny_model, write_ckpt_and_arch

pytest.importorskip('onnxruntime')
inference_script = load_script('inference_vsr')


def write_frames(folder, num=7, size=(20, 24), seed=0):
    """Smooth random frames (a blurred noise field drifting one pixel per frame) as PNGs."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.integers(0, 256, (size[0] + num, size[1] + num, 3)).astype(np.float32), (0, 0), 2)
    field = cv2.normalize(field, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    os.makedirs(folder)
    for t in range(num):
        cv2.imwrite(osp.join(folder, f'{t:08d}.png'), field[t:t + size[0], t:t + size[1]])
    return str(folder)


def read_frames(folder):
    return [cv2.imread(osp.join(folder, name)) for name in sorted(os.listdir(folder))]


def psnr8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64))**2)
    return float('inf') if mse == 0 else 10 * np.log10(255.**2 / mse)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A tiny VESPCN (flow warp and bicubic residual) as checkpoint + arch file, and its ONNX export."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('deploy')
    model = tiny_model('VESPCN', seed=1)
    ckpt, arch = write_ckpt_and_arch(root, model)
    onnx_path = str(root / 'vespcn.onnx')
    export_student(model, onnx_path, parity_size=(22, 26), log=lambda *_: None)
    frames = write_frames(root / 'lr')
    torch.set_num_threads(threads)
    return dict(root=root, ckpt=ckpt, arch=arch, onnx=onnx_path, frames=frames)


def test_onnx_inference_equals_pytorch_inference(exported, tmp_path, one_thread):
    common = ['--input', exported['frames'], '--chunk', '3', '--no-progress', '--device', 'cpu']
    torch_out, onnx_out = str(tmp_path / 'torch'), str(tmp_path / 'onnx')
    assert run_cli('inference_vsr', inference_script.main,
                   ['--ckpt', exported['ckpt'], '--arch-opt', exported['arch'], '--output', torch_out] + common) == 0
    assert run_cli('inference_vsr', inference_script.main,
                   ['--onnx', exported['onnx'], '--arch-opt', exported['arch'], '--output', onnx_out] + common) == 0
    ref, got = read_frames(torch_out), read_frames(onnx_out)
    assert len(ref) == len(got) == 7 and got[0].shape == (80, 96, 3)
    assert sorted(os.listdir(torch_out)) == sorted(os.listdir(onnx_out))
    assert min(psnr8(a, b) for a, b in zip(ref, got)) >= 50


def run_expecting_error(argv, capsys):
    assert run_cli('inference_vsr', inference_script.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('inference_vsr: error:') and '\n' not in err
    return err


def test_a_file_that_is_not_onnx_is_refused(exported, tmp_path, capsys):
    fake = tmp_path / 'fake.onnx'
    fake.write_bytes(b'this is not a protobuf' * 10)
    shutil.copy(sidecar_path(exported['onnx']), sidecar_path(str(fake)))
    out = tmp_path / 'sr'
    err = run_expecting_error(['--onnx', str(fake), '--input', exported['frames'], '--output', str(out)], capsys)
    assert str(fake) in err and 'ONNX' in err
    assert not out.exists()


def test_a_model_without_sidecar_is_refused(exported, tmp_path, capsys):
    bare = tmp_path / 'bare.onnx'
    shutil.copy(exported['onnx'], bare)
    err = run_expecting_error(['--onnx', str(bare), '--input', exported['frames'], '--output', str(tmp_path / 'sr')],
                              capsys)
    assert 'sidecar' in err and not (tmp_path / 'sr').exists()


@pytest.mark.parametrize('change', ['scale', 'window'])
def test_options_of_another_scale_or_window_are_refused(exported, tmp_path, capsys, change):
    with open(exported['arch']) as f:
        arch = yaml.safe_load(f)
    if change == 'scale':
        arch['scale'], arch['network_g']['scale'] = 2, 2
    else:
        arch['network_g']['num_frame'] = 3
    other = tmp_path / 'other.yml'
    other.write_text(yaml.safe_dump(arch))
    out = tmp_path / 'sr'
    err = run_expecting_error(['--onnx', exported['onnx'], '--opt', str(other), '--input', exported['frames'],
                               '--output', str(out)], capsys)
    assert str(other) in err and ('x2' in err if change == 'scale' else 'window of 3' in err)
    assert not out.exists()


@pytest.mark.parametrize('key,value,says', [('scale', 2, 'x2'), ('window', 3, 'says 3')])
def test_a_sidecar_that_disagrees_with_the_graph_is_refused(exported, tmp_path, capsys, key, value, says):
    model = tmp_path / 'm.onnx'
    shutil.copy(exported['onnx'], model)
    with open(sidecar_path(exported['onnx'])) as f:
        meta = json.load(f)
    meta[key] = value
    with open(sidecar_path(str(model)), 'w') as f:
        json.dump(meta, f)
    err = run_expecting_error(['--onnx', str(model), '--input', exported['frames'], '--output', str(tmp_path / 'o')],
                              capsys)
    assert str(model) in err and says in err and not (tmp_path / 'o').exists()


def test_an_existing_output_is_kept(exported, tmp_path, capsys):
    out = tmp_path / 'sr.mp4'
    out.write_bytes(b'keep me')
    err = run_expecting_error(['--onnx', exported['onnx'], '--input', exported['frames'], '--output', str(out)],
                              capsys)
    assert 'exists' in err and out.read_bytes() == b'keep me'
