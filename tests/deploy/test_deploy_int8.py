"""INT8 static quantization of an exported student: it runs, stays near fp32, and refuses what does not quantize."""
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from stdsr.deploy.int8 import QuantizationRefused, quantize_student, training_windows
from stdsr.deploy.onnx_export import export_student
from stdsr.deploy.sidecar import sidecar_path
from stdsr.deploy.onnx_session import OnnxStudent
from stdsr.tools import quantize_onnx
from stdsr.utils.cli import run_cli
from stdsr.inference.model_loading import LoadedModel
from test_deploy_export import tiny_model
from test_deploy_inference import write_frames

pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def calib_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('calib') / 'train_lr'
    for i in range(2):
        write_frames(root / f'clip{i}', num=6, size=(36, 40), seed=i)
    return str(root)


@pytest.fixture(scope='module')
def fp32_model(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    path = str(tmp_path_factory.mktemp('fp32') / 'vsrnet.onnx')
    export_student(tiny_model('VSRNet', seed=2), path, parity_size=(22, 26), log=lambda *_: None)
    torch.set_num_threads(threads)
    return path


def test_calibration_windows_come_from_the_training_clips(calib_root):
    windows = training_windows(calib_root, 3, 5, crop=(16, 20), seed=0)
    assert len(windows) == 5 and all(w.shape == (1, 3, 3, 16, 20) and w.dtype == np.float32 for w in windows)
    assert all(0 <= w.min() and w.max() <= 1 and w.std() > 0 for w in windows)
    assert not np.array_equal(windows[0], training_windows(calib_root, 3, 1, crop=(16, 20), seed=1)[0])


def test_int8_model_runs_close_to_fp32(fp32_model, calib_root, tmp_path):
    out = str(tmp_path / 'vsrnet_int8.onnx')
    meta = quantize_student(fp32_model, out, calib_root, num_windows=4, crop=(16, 20), min_psnr=25,
                            log=lambda *_: None)
    assert meta['precision'] == 'int8' and meta['quantization']['calibration']['windows'] == 4
    assert json.load(open(sidecar_path(out))) == meta
    import onnx
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    int8, fp32 = OnnxStudent(out), OnnxStudent(fp32_model)
    lq = torch.rand(1, 4, 3, 16, 20)
    a, b = int8.infer(lq), fp32.infer(lq)
    assert a.shape == b.shape == (1, 4, 3, 64, 80)
    diff = float((a - b).abs().max())
    assert 0 < diff < 0.2  # quantized (not the fp32 graph again), yet near it


def test_a_quality_drop_beyond_the_limit_is_refused(fp32_model, calib_root, tmp_path, capsys):
    out = tmp_path / 'int8.onnx'
    argv = ['--model', fp32_model, '--output', str(out), '--calib-lq', calib_root, '--calib-windows', '2',
            '--min-psnr', '1000']
    assert run_cli('quantize_onnx', quantize_onnx.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('quantize_onnx: error:') and 'does not quantize' in err and '\n' not in err
    assert os.listdir(tmp_path) == []


class Upsampler(nn.Module):
    """A sliding-window "student" without a single convolution."""

    def forward(self, x):
        return nn.functional.interpolate(x[:, x.shape[1] // 2], scale_factor=2, mode='bilinear', align_corners=False)


def test_a_graph_without_convolutions_is_refused(calib_root, tmp_path):
    model = LoadedModel(label='upsampler', net=Upsampler(), mode='sliding', window=3, net_opt={'type': 'Up'})
    fp32 = str(tmp_path / 'up.onnx')
    export_student(model, fp32, parity_size=(22, 26), log=lambda *_: None)
    with pytest.raises(QuantizationRefused, match='no Conv node'):
        quantize_student(fp32, str(tmp_path / 'up_int8.onnx'), calib_root, num_windows=2)
    assert sorted(os.listdir(tmp_path)) == ['up.onnx', 'up.onnx.json']
