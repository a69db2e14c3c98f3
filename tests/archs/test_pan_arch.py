"""PAN, the published single-image teacher: its layout matches the shared weights' key list, it loads them strictly,
and on photographs the project ships it is far above bicubic (the reason it is worth distilling)."""
import os

import numpy as np
import pytest
import torch
from skimage import data as skdata

import stdsr  # noqa: F401  (patches torchvision, registers the archs)
from basicsr.archs import build_network
from stdsr.archs.pan_arch import PAN
from stdsr.data.lr_degradation import bi_downsample
from stdsr.archs.clip_runner import run_clip, temporal_mode
from stdsr.distill.feature_hooks import FeatureRecorder, fsr_tap, stack_frames
from stdsr.metrics.bicubic import bicubic_upsample
from stdsr.metrics.vsr_metrics import psnr_y
from stdsr.utils.frames import frames_to_clip, tensor_to_frames

PAN_WEIGHTS = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'pretrained', 'PANx4_DF2K.pth')
needs_weights = pytest.mark.skipif(not os.path.isfile(PAN_WEIGHTS), reason='../shared/pretrained/PANx4_DF2K.pth '
                                   'is not here (a user downloads it: docs/model_zoo.md)')


def test_pan_layout_is_the_published_one():
    net = build_network({'type': 'PAN'})
    state = net.state_dict()
    # ../shared/pretrained/README.md: 146 tensors, 272,419 parameters, F^SR of 24 channels
    assert len(state) == 146
    assert sum(p.numel() for p in net.parameters()) == 272419
    assert state['SCPA_trunk.15.PAConv.k2.bias'].shape == (20, )
    assert 'SCPA_trunk.0.PAConv.k3.bias' not in state and 'SCPA_trunk.0.conv3.bias' not in state
    assert net.conv_last.in_channels == 24 and fsr_tap(net) == 'conv_last:input'


def test_pan_output_is_the_bilinear_base_plus_a_residual():
    torch.manual_seed(0)
    net = PAN(nb=2).eval()
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(2, 3, 6, 7)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 3, 24, 28)
    assert torch.allclose(out, torch.nn.functional.interpolate(x, scale_factor=4, mode='bilinear'))
    with pytest.raises(ValueError, match='single images'):
        net(torch.rand(1, 5, 3, 6, 7))


def test_pan_runs_frame_by_frame_and_the_hook_sees_one_fsr_per_frame():
    opt = {'network_t': {'type': 'PAN', 'nb': 2}}
    assert temporal_mode(opt, 'network_t') == ('frame', 1)  # PAN declares it
    opt_image = {'network_t': {'type': 'MSRResNet', 'num_block': 1}, 'temporal': {'network_t': 'frame'}}
    assert temporal_mode(opt_image, 'network_t') == ('frame', 1)  # any BasicSR image arch, declared in options
    torch.manual_seed(0)
    net = PAN(nb=2).eval()
    clip = torch.rand(2, 5, 3, 8, 8)
    with torch.no_grad():
        out = run_clip(net, clip, 'frame', 1, chunk=3)  # chunked as validation does
        frame2 = net(clip[1, 2:3])
        with FeatureRecorder(net, [fsr_tap(net)]) as recorder:
            whole = run_clip(net, clip, 'frame', 1)  # training: one call, (B*N, C, H, W) with B outer
        calls = recorder.pop(fsr_tap(net))
    assert out.shape == (2, 5, 3, 32, 32)
    assert torch.allclose(out, whole, atol=1e-6) and torch.allclose(out[1, 2], frame2[0], atol=1e-6)
    assert len(calls) == 1
    feats = stack_frames(calls, 2, 5)
    assert feats.shape == (2, 5, 24, 32, 32)
    with torch.no_grad():  # frame n of clip b is F^SR of that frame alone
        with FeatureRecorder(net, [fsr_tap(net)]) as alone:
            net(clip[1, 2:3])
    assert torch.allclose(feats[1, 2], alone.pop(fsr_tap(net))[0][0], atol=1e-6)


@needs_weights
def test_published_pan_loads_strictly_and_beats_bicubic_by_1_5_db_on_shipped_photos():
    net = PAN().eval()
    state = torch.load(PAN_WEIGHTS, map_location='cpu', weights_only=True)
    net.load_state_dict(state, strict=True)  # no renaming: the key names are the published ones
    gains = []
    for name in ('astronaut', 'coffee', 'chelsea'):
        gt = np.ascontiguousarray(getattr(skdata, name)()[:160, :160, ::-1])  # uint8 BGR, the frames' convention
        lq = frames_to_clip([bi_downsample(gt, 4)])[0]  # (1, 3, 40, 40), MATLAB bicubic x1/4 as the demo data
        with torch.no_grad():
            sr = net(lq)
        gains.append(psnr_y(tensor_to_frames(sr)[0], gt) - psnr_y(tensor_to_frames(bicubic_upsample(lq, 4))[0], gt))
    assert min(gains) > 0.5 and np.mean(gains) >= 1.5, gains
