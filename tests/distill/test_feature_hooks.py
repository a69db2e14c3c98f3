import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn as nn

import stdsr  # noqa: F401  (patches torchvision before basicsr is imported anywhere)
from stdsr.distill.feature_hooks import FeatureRecorder, UnknownModulePathError, stack_frames, unwrap_network


class ToyRecurrent(nn.Module):
    """Calls `conv_hr` once per frame, like BasicVSR's upsampling branch."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 1, 1))
        self.conv_hr = nn.Conv2d(4, 4, 3, 1, 1)
        self.conv_last = nn.Conv2d(4, 3, 3, 1, 1)

    def forward(self, x):  # x: (B, N, 3, H, W)
        outs = []
        for t in range(x.size(1)):
            outs.append(self.conv_last(torch.relu(self.conv_hr(self.body(x[:, t])))))
        return torch.stack(outs, dim=1)


class TupleOut(nn.Module):

    def forward(self, x):
        return x * 2, x * 3


class Wrapper(nn.Module):
    """Stand-in for DDP: the real network lives at `.module`."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        return self.module(*args)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_records_every_call_in_order():
    torch.manual_seed(0)
    net = ToyRecurrent()
    x = torch.randn(2, 3, 3, 5, 5)
    expected = [net.conv_hr(net.body(x[:, t])) for t in range(3)]  # before hooking: these calls are not recorded
    with FeatureRecorder(net, ['conv_hr', 'body.2']) as rec:
        net(x)
        calls = rec.records['conv_hr']
        assert len(calls) == 3 and len(rec.records['body.2']) == 3
        for t in range(3):
            torch.testing.assert_close(calls[t], expected[t], rtol=0, atol=0)
        assert calls[0].requires_grad  # not detached by default
        popped = rec.pop('conv_hr')
        assert len(popped) == 3 and rec.records['conv_hr'] == []
        rec.clear()
        assert rec.records['body.2'] == []
    net(x)  # hooks removed on exit
    assert rec.records['conv_hr'] == [] and rec.records['body.2'] == []


def test_detach_and_tuple_output():
    net = nn.Sequential(TupleOut())
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    rec = FeatureRecorder(net, ['0'], detach=True)
    net(x)
    (feat, ) = rec.records['0']
    torch.testing.assert_close(feat, x.detach() * 2)
    assert not feat.requires_grad
    rec.remove()
    rec.remove()  # idempotent


@pytest.mark.parametrize('wrap', ['wrapper', 'dataparallel'])
@pytest.mark.parametrize('path', ['conv_hr', 'module.conv_hr'])
def test_wrapped_network(wrap, path):
    net = ToyRecurrent()
    wrapped = Wrapper(net) if wrap == 'wrapper' else nn.DataParallel(net)  # CPU-only DataParallel is a pass-through
    assert unwrap_network(wrapped) is net
    with FeatureRecorder(wrapped, [path]) as rec:
        wrapped(torch.randn(1, 2, 3, 4, 4))
        assert len(rec.records[path]) == 2


def test_real_ddp_single_process():
    if not dist.is_available():
        pytest.skip('torch.distributed unavailable')
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{_free_port()}', rank=0, world_size=1)
    try:
        net = ToyRecurrent()
        ddp = nn.parallel.DistributedDataParallel(net)
        with FeatureRecorder(ddp, ['module.body.0', 'conv_hr']) as rec:
            ddp(torch.randn(1, 2, 3, 4, 4))
            assert len(rec.records['module.body.0']) == 2 and len(rec.records['conv_hr']) == 2
    finally:
        dist.destroy_process_group()


def test_unknown_path_lists_nearest_names():
    net = ToyRecurrent()
    with pytest.raises(UnknownModulePathError) as info:
        FeatureRecorder(net, ['conv_hrr'])
    msg = str(info.value)
    assert 'conv_hrr' in msg and "'conv_hr'" in msg and 'named_modules' in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(KeyError, match='body.7'):
        FeatureRecorder(Wrapper(net), ['module.body.7'])
    # a bad path among good ones registers nothing
    with pytest.raises(ValueError):
        FeatureRecorder(net, ['conv_hr', 'nope'])
    assert not net.conv_hr._forward_hooks


def test_hooks_leave_state_dict_unchanged():
    net = ToyRecurrent()
    before = net.state_dict()
    rec = FeatureRecorder(net, ['conv_hr', 'body.0'])
    net(torch.randn(1, 2, 3, 4, 4))
    after = net.state_dict()
    assert list(after.keys()) == list(before.keys())
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sum(p.numel() for p in net.parameters()) == sum(v.numel() for v in before.values())
    rec.remove()


def test_stack_frames_sliding_window_layout():
    b, n = 2, 3
    # row b*N + n holds frame n of clip b: encode (b, n) in the value
    flat = torch.stack([torch.full((1, 2, 2), 10.0 * i + t) for i in range(b) for t in range(n)])
    out = stack_frames([flat], b, n)
    assert out.shape == (b, n, 1, 2, 2)
    for i in range(b):
        for t in range(n):
            assert out[i, t].unique().item() == 10.0 * i + t


def test_stack_frames_recurrent_layout():
    b, n = 2, 3
    calls = [torch.full((b, 1, 2, 2), float(t)) for t in range(n)]
    out = stack_frames(calls, b, n)
    assert out.shape == (b, n, 1, 2, 2)
    for t in range(n):
        assert (out[:, t] == t).all()


def test_stack_frames_with_recorder_matches_forward():
    net = ToyRecurrent()
    x = torch.randn(2, 3, 3, 4, 4)
    with FeatureRecorder(net, ['conv_hr']) as rec:
        net(x)
        feats = stack_frames(rec.pop('conv_hr'), 2, 3)
    torch.testing.assert_close(feats[:, 1], net.conv_hr(net.body(x[:, 1])), rtol=0, atol=0)


def test_stack_frames_errors():
    with pytest.raises(ValueError, match=r'2 recorded call\(s\).*\(4, 1, 2, 2\)'):
        stack_frames([torch.zeros(4, 1, 2, 2)] * 2, 2, 3)
    with pytest.raises(ValueError, match='batch=2, num_frames=3'):
        stack_frames([torch.zeros(5, 1, 2, 2)], 2, 3)
    with pytest.raises(ValueError, match='0 recorded'):
        stack_frames([], 2, 3)
    with pytest.raises(ValueError):  # right count, mismatched shapes
        stack_frames([torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 2, 2)], 2, 3)


def test_paused_recorder_records_nothing_and_resumes():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    rec = FeatureRecorder(net, ['0'])
    x = torch.rand(1, 1, 4, 4)
    with rec.paused():
        net(x)
    assert rec.records['0'] == []
    net(x)
    assert len(rec.records['0']) == 1
