"""The paper's compact students (VSRNet, VESPCN, FastDVDnetSR): interface, F^SR tap, gradients and sanity checks."""
import math
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

import stdsr  # noqa: F401  (patches torchvision, registers the archs)
from basicsr.archs import build_network
from e2e_helpers import stand_in_for_trained
from basicsr.utils.registry import ARCH_REGISTRY
from stdsr.archs.fastdvdnet_arch import FastDVDnetSR
from stdsr.archs.vespcn_arch import VESPCN
from stdsr.archs.vsrnet_arch import VSRNet
from stdsr.distill.feature_hooks import FeatureRecorder, fsr_tap

ARCHS = [VSRNet, VESPCN, FastDVDnetSR]
FRAMES = [3, 5, 7]
# documented in docs/students.md; a change of the defaults must update the docs too
DEFAULT_PARAMS = {'VSRNet': 274051, 'VESPCN': 267867, 'FastDVDnetSR': 373786}
DEFAULT_FSR_CH = {'VSRNet': 32, 'VESPCN': 16, 'FastDVDnetSR': 16}


def _clip(b=2, t=5, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, h, w, generator=g)


def _net(cls, **kwargs):
    torch.manual_seed(0)
    return cls(**kwargs).eval()


def test_registry_names_resolve_and_build():
    for cls in ARCHS:
        assert ARCH_REGISTRY.get(cls.__name__) is cls
        net = build_network({'type': cls.__name__, 'num_frame': 3})
        assert isinstance(net, cls) and net.num_frame == 3


@pytest.mark.parametrize('num_frame', FRAMES)
@pytest.mark.parametrize('cls', ARCHS)
def test_x4_shape_and_fsr_tap(cls, num_frame):
    net = _net(cls, num_frame=num_frame)
    assert fsr_tap(net) == 'conv_last:input'
    assert net.fsr_channels == DEFAULT_FSR_CH[cls.__name__]
    x = _clip(t=num_frame)
    with torch.no_grad(), FeatureRecorder(net, [fsr_tap(net)]) as rec:
        out = net(x)
        net(x)
    seen = rec.records[fsr_tap(net)]
    assert out.shape == (2, 3, 64, 64)
    assert len(seen) == 2  # recorded on every call, once per call
    assert seen[0].shape == (2, net.fsr_channels, 64, 64)
    assert seen[0].min() >= 0  # activated: the ReLU after conv_hr is part of F^SR
    # the tap is exactly the HR map the RGB output conv reads
    with torch.no_grad():
        rebuilt = net.conv_last(seen[0])
        if net.residual:
            rebuilt = rebuilt + F.interpolate(x[:, num_frame // 2], scale_factor=4, mode='bicubic', align_corners=False)
    torch.testing.assert_close(rebuilt, out)


def test_vsrnet_fusion_variants_tap_channels():
    x = _clip(t=5)
    for fusion, ch in [('A', 32), ('B', 32), ('C', 5 * 32)]:
        net = _net(VSRNet, fusion=fusion)
        with torch.no_grad(), FeatureRecorder(net, [fsr_tap(net)]) as rec:
            out = net(x)
        seen = rec.records[fsr_tap(net)]
        assert out.shape == (2, 3, 64, 64) and net.fsr_channels == ch
        assert len(seen) == 1 and seen[0].shape == (2, ch, 64, 64)
    with pytest.raises(ValueError, match='fusion'):
        VSRNet(fusion='D')


@pytest.mark.parametrize('num_frame', FRAMES)
@pytest.mark.parametrize('cls', ARCHS)
def test_gradients_reach_every_parameter(cls, num_frame):
    net = stand_in_for_trained(_net(cls, num_frame=num_frame).train())
    net(_clip(t=num_frame)).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize('num_frame', FRAMES)
@pytest.mark.parametrize('cls', ARCHS)
def test_every_frame_influences_output(cls, num_frame):
    """A window member that never reaches the output would be silently wasted (e.g. a wrong triplet range)."""
    net = stand_in_for_trained(_net(cls, num_frame=num_frame))
    x = _clip(b=1, t=num_frame)
    with torch.no_grad():
        ref = net(x)
        for t in range(num_frame):
            y = x.clone()
            y[:, t] = 1 - y[:, t]
            assert (net(y) - ref).abs().max() > 1e-4, f'frame {t} has no effect'


@pytest.mark.parametrize('cls,kwargs', [(VSRNet, {'residual': True}), (VESPCN, {'residual': True}),
                                        (FastDVDnetSR, {})])
def test_zeroed_branch_gives_bicubic_of_centre(cls, kwargs):
    net = _net(cls, **kwargs)
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        x = _clip(t=5, h=12, w=10)
        out = net(x)
    bic = F.interpolate(x[:, 2], scale_factor=4, mode='bicubic', align_corners=False)
    torch.testing.assert_close(out, bic)
    # the frames differ, so a wrong "centre" would not pass
    assert (F.interpolate(x[:, 1], scale_factor=4, mode='bicubic', align_corners=False) - bic).abs().max() > 0.1


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('build', [FastDVDnetSR, lambda: VSRNet(residual=True)], ids=['FastDVDnetSR', 'VSRNet'])
def test_residual_students_start_at_bicubic_and_can_leave_it(build, seed):
    """A start away from bicubic left the net on the bicubic plateau for good (fastdvdnet_arch.py, vsrnet_arch.py):
    it must start exactly there, and the pixel loss must still reach its output conv and, after one step,
    everything else."""
    torch.manual_seed(seed)
    net = build().train()
    x, target = _clip(t=5, seed=seed), _clip(b=2, t=1, h=64, w=64, seed=seed + 10)[:, 0]
    out = net(x)
    torch.testing.assert_close(out, F.interpolate(x[:, 2], scale_factor=4, mode='bicubic', align_corners=False))
    (out - target).abs().mean().backward()
    assert net.conv_last.weight.grad.abs().max() > 1e-3
    torch.optim.Adam(net.parameters(), lr=1e-4).step()
    net.zero_grad()
    (net(x) - target).abs().mean().backward()
    assert all(p.grad.abs().max() > 0 for p in net.parameters())


def test_vsrnet_output_conv_keeps_its_default_init_when_not_residual():
    """Only the residual form starts at its base; the paper's direct form keeps PyTorch's init (a zero output conv
    would start it at black)."""
    assert VSRNet(residual=False).conv_last.weight.abs().max() > 0
    assert VSRNet(residual=True).conv_last.weight.abs().max() == 0


def test_residual_defaults_follow_papers():
    assert not VSRNet().residual and not VESPCN().residual and FastDVDnetSR().residual


@pytest.mark.parametrize('cls', ARCHS)
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_odd_sizes_and_scales(cls, scale):
    """Padding (VESPCN's flow net, FastDVDnet's U-Net) must not leak into the output size."""
    net = _net(cls, scale=scale)
    with torch.no_grad():
        out = net(_clip(b=1, t=5, h=9, w=7))
    assert out.shape == (1, 3, 9 * scale, 7 * scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('cls', ARCHS)
def test_bad_inputs_raise_value_error(cls):
    net = _net(cls, num_frame=5)
    with pytest.raises(ValueError, match='frames'):
        net(_clip(t=3))
    with pytest.raises(ValueError, match='channels'):
        net(torch.rand(1, 5, 1, 8, 8))
    with pytest.raises(ValueError, match='shape'):
        net(torch.rand(1, 15, 8, 8))
    with pytest.raises(ValueError, match='num_frame'):
        cls(num_frame=4)
    with pytest.raises(ValueError, match='scale'):
        cls(scale=0)


def test_unsupported_scales_raise_value_error():
    with pytest.raises(ValueError, match='scale'):
        FastDVDnetSR(scale=5)  # sub-pixel tail: 2^n or 3 only
    with pytest.raises(ValueError, match='scale'):
        VESPCN(scale=2.5)  # one sub-pixel step: integers only
    assert _net(VSRNet, scale=1.5)(_clip(b=1, h=8, w=8)).shape == (1, 3, 12, 12)  # bicubic resizes anything


@pytest.mark.parametrize('cls', ARCHS)
def test_default_parameter_counts(cls):
    n = sum(p.numel() for p in cls().parameters())
    assert n == DEFAULT_PARAMS[cls.__name__]
    assert n < 500_000  # compact, like the paper's students


def test_vespcn_warps_a_known_shift_onto_the_centre():
    """Pin the flow convention: a neighbour that is the centre moved right by one pixel must be warped back
    exactly when the motion net outputs +1 px in x (tanh outputs are normalised, align_corners=True units)."""
    h, w = 12, 16
    net = _net(VESPCN, num_frame=3, keep_flows=True)
    coarse_last, fine_last = net.motion_comp.coarse[-3], net.motion_comp.fine[-3]
    with torch.no_grad():
        for conv in (coarse_last, fine_last):
            conv.weight.zero_()
            conv.bias.zero_()
        coarse_last.bias[:16] = math.atanh(2 / (w - 1))  # channels 0..15 shuffle into flow x
        center = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
        nbr = torch.roll(center, shifts=1, dims=-1)  # nbr[..., x] = center[..., x - 1]
        net(torch.stack([nbr, center, nbr], dim=1))
    flows, warped = net.last_flows, net.last_warped
    assert flows.shape == (1, 2, 2, h, w) and warped.shape == (1, 2, 3, h, w)
    torch.testing.assert_close(flows[:, :, 0], torch.ones(1, 2, h, w))
    torch.testing.assert_close(flows[:, :, 1], torch.zeros(1, 2, h, w))
    for k in range(2):
        torch.testing.assert_close(warped[0, k, :, :, :w - 1], center[0, :, :, :w - 1], atol=1e-5, rtol=0)


def test_vespcn_flows_kept_only_on_request():
    x = _clip(b=1, t=5)
    net = _net(VESPCN)
    net(x)
    assert net.last_flows is None and net.last_warped is None
    net = _net(VESPCN, keep_flows=True)
    net(x)
    assert net.last_flows.shape == (1, 4, 2, 16, 16) and net.last_flows.requires_grad


def test_vespcn_residual_trunk_is_a_long_skip_over_edsr_blocks():
    """trunk='residual' (a teacher option): same interface and F^SR tap, blocks with a long skip, plain unchanged."""
    plain = _net(VESPCN, num_feat=16, num_block=2)
    assert [k for k in plain.state_dict() if k.startswith('body.')][:2] == ['body.0.weight', 'body.0.bias']
    net = _net(VESPCN, num_feat=16, num_block=3, trunk='residual', residual=True)
    assert len(net.body.blocks) == 3
    x = _clip(t=5)
    with torch.no_grad(), FeatureRecorder(net, [fsr_tap(net)]) as rec:
        out = net(x)
    assert out.shape == (2, 3, 64, 64) and rec.records[fsr_tap(net)][0].shape == (2, net.fsr_channels, 64, 64)
    # the long skip: with every block's last conv zeroed, the trunk is conv_after over the fusion features, plus them
    frames = torch.rand(2, 15, 8, 8)
    with torch.no_grad():
        for block in net.body.blocks:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
        feat = F.relu(net.body.conv_first(frames))
        torch.testing.assert_close(net.body(frames), F.relu(feat + net.body.conv_after(feat)))
    with pytest.raises(ValueError, match='trunk'):
        VESPCN(trunk='dense')


@pytest.mark.slow
def test_vespcn_runs_without_third_party_warnings():
    """BasicSR's flow_warp warns about torch.meshgrid's indexing once per process; VESPCN's call keeps it quiet. In a
    fresh process, because torch raises that warning only once per process."""
    probe = ('import warnings, torch; import stdsr; from stdsr.archs.vespcn_arch import VESPCN; '
             'warnings.simplefilter("error"); '
             'VESPCN(num_feat=8, num_frame=3, num_block=1)(torch.rand(1, 3, 3, 8, 8))')
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
