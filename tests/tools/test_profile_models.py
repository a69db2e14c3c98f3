"""Profiling: FLOPs equal hand counts, per-frame division by temporal design, tap probing, the table script."""
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn as nn

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.archs import build_network
from basicsr.archs.arch_util import DCNv2Pack
from stdsr.tools.profiling import network as profiling
from stdsr.tools.profiling.network import (ProfileError, count_flops, count_parameters, format_table, profile_network,
                                   resolve_tap)
from e2e_helpers import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
STD_DEMO = REPO_ROOT / 'options' / 'train' / 'STD' / 'demo' / 'train_EDVRS_STD_demo.yml'




def conv_flops(c_in, c_out, k, h, w):
    return 2 * c_in * c_out * k * k * h * w


class CentreConv(nn.Module):
    """Sliding toy: one conv on the centre frame of a (1, t, c, h, w) window -> one frame."""

    def __init__(self, num_frame=5, c_out=8):
        super().__init__()
        self.num_frame = num_frame
        self.conv_hr = nn.Conv2d(3, c_out, 3, 1, 1)

    def forward(self, x):
        assert x.shape[1] == self.num_frame
        return self.conv_hr(x[:, self.num_frame // 2])


class PerFrameConv(nn.Module):
    """Recurrent toy: the same conv on every frame, t frames in -> t frames out."""

    def __init__(self, c_out=8):
        super().__init__()
        self.body = nn.Conv2d(3, c_out, 3, 1, 1)

    def forward(self, x):
        return torch.stack([self.body(x[:, i]) for i in range(x.shape[1])], dim=1)


@pytest.fixture
def fixed_time(monkeypatch):
    """Every timed forward 'takes' 0.6 s, so the per-frame division is exact."""
    monkeypatch.setattr(profiling, 'time_forward', lambda *args, **kwargs: 0.6)


def test_single_conv_flops_equal_hand_count():
    conv = nn.Conv2d(3, 8, 3, 1, 1)
    flops, out = count_flops(conv, torch.rand(1, 3, 10, 12))
    assert out.shape == (1, 8, 10, 12)
    assert flops == conv_flops(3, 8, 3, 10, 12) == 51840


def test_strided_grouped_conv_flops_use_output_size_and_groups():
    conv = nn.Conv2d(4, 6, 5, stride=2, padding=2, groups=2)
    flops, out = count_flops(conv, torch.rand(2, 4, 16, 16))
    assert out.shape == (2, 6, 8, 8)
    assert flops == 2 * 2 * (4 // 2) * 6 * 25 * 8 * 8


def test_vsrnet_flops_equal_the_sum_of_its_three_convs(fixed_time):
    """Fusion B at x2 on 5x6 LR: the first conv runs per frame at HR, conv_hr fuses T*4 channels, conv_last."""
    arch = {'type': 'VSRNet', 'num_frame': 3, 'num_feat': 4, 'num_feat_hr': 6, 'scale': 2}
    prof = profile_network(arch, shape=(3, 3, 5, 6), repeats=1, warmup=0)
    h, w = 10, 12
    expected = 3 * conv_flops(3, 4, 9, h, w) + conv_flops(3 * 4, 6, 5, h, w) + conv_flops(6, 3, 5, h, w)
    assert prof.flops == expected
    assert prof.channels == [6] and prof.tap_source == 'default' and prof.taps == ['conv_last:input']


def test_deformable_conv_counts_as_its_dense_conv_plus_offset_conv():
    dcn = DCNv2Pack(8, 8, 3, padding=1, deformable_groups=2)
    x = torch.rand(1, 8, 12, 12)
    flops, _ = count_flops(lambda inp: dcn(inp, inp), x)
    offset_channels = 3 * 2 * 9
    assert flops == conv_flops(8, 8, 3, 12, 12) + conv_flops(8, offset_channels, 3, 12, 12)


def test_parameter_count_is_sum_of_numel_including_frozen():
    net = build_network({'type': 'VESPCN'})
    net.motion_comp.requires_grad_(False)
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
    assert count_parameters(nn.Conv2d(3, 8, 3)) == 8 * 3 * 9 + 8


def test_sliding_network_returns_one_frame_per_window(fixed_time):
    prof = profile_network(CentreConv(num_frame=3), shape=(7, 3, 10, 12), repeats=1, warmup=0)
    assert prof.mode == 'sliding' and prof.frames_out == 1
    assert prof.input_shape == (3, 3, 10, 12)  # its own window, whatever t is
    assert prof.flops == conv_flops(3, 8, 3, 10, 12)
    assert prof.seconds == pytest.approx(0.6)


def test_recurrent_network_divides_by_t(fixed_time):
    prof = profile_network(PerFrameConv(), shape=(4, 3, 10, 12), repeats=1, warmup=0, tap='body')
    assert prof.mode == 'recurrent' and prof.frames_out == 4
    assert prof.flops == conv_flops(3, 8, 3, 10, 12)  # 4 frames' FLOPs / 4
    assert prof.seconds == pytest.approx(0.6 / 4)
    assert prof.taps == ['body'] and prof.channels == [8]


def test_single_image_network_reads_one_frame(fixed_time):
    """PAN (temporal mode 'frame', the PAN study's teacher) and any image arch declared 'frame': one (c, h, w)
    frame in, one out; its tap is F^SR at HR."""
    prof = profile_network({'type': 'PAN', 'nb': 1}, shape=(5, 3, 8, 10), repeats=1, warmup=0)
    assert prof.mode == 'frame' and prof.frames_out == 1 and prof.input_shape == (3, 8, 10)
    assert prof.params == count_parameters(build_network({'type': 'PAN', 'nb': 1}))
    assert prof.taps == ['conv_last:input'] and prof.channels == [24]
    assert prof.seconds == pytest.approx(0.6)
    image = profile_network({'type': 'MSRResNet', 'num_feat': 8, 'num_block': 1}, shape=(5, 3, 8, 10), repeats=1,
                            warmup=0, opt={'temporal': {'network_g': 'frame'}})
    assert image.mode == 'frame' and image.input_shape == (3, 8, 10)
    built = profile_network(build_network({'type': 'PAN', 'nb': 1}), shape=(5, 3, 8, 10), repeats=1, warmup=0)
    assert built.mode == 'frame' and built.flops == prof.flops
    assert '| frame (1→1) | 3×8×10 |' in format_table([prof])


def test_temporal_section_overrides_the_derived_mode(fixed_time):
    arch = {'type': 'VSRNet', 'num_frame': 3, 'num_feat': 4, 'num_feat_hr': 4}
    prof = profile_network(arch, shape=(3, 3, 8, 8), repeats=1, warmup=0)
    assert prof.mode == 'sliding'
    with pytest.raises(ProfileError, match='recurrent network must return'):
        profile_network(arch, shape=(3, 3, 8, 8), repeats=1, warmup=0, opt={'temporal': {'network_g': 'recurrent'}})


def test_tap_resolution_order():
    net = build_network({'type': 'VSRNet'})
    assert resolve_tap(net, tap='conv_first') == (['conv_first'], 'given')
    opt = {'distill': {'student_layer': 'conv_first', 'teacher_layer': ['a', 'b']}}
    assert resolve_tap(net, 'network_g', opt) == (['conv_first'], 'distill.student_layer')
    assert resolve_tap(net, 'network_t', opt) == (['a', 'b'], 'distill.teacher_layer')
    per_loss = {'distill': {'losses': {'x': {'student_layer': 'conv_last'}, 'y': {'student_layer': 'conv_last'}}}}
    assert resolve_tap(net, 'network_g', per_loss) == (['conv_last'], 'distill.losses.*.student_layer')
    assert resolve_tap(net) == (['conv_last:input'], 'default')
    assert resolve_tap(PerFrameConv()) == (['conv_last:input'], 'default')
    net.FSR_TAP = 'conv_hr'  # an arch whose output conv has another name declares its tap
    assert resolve_tap(net) == (['conv_hr'], 'FSR_TAP')


def test_tap_channels_are_probed_not_assumed(fixed_time):
    fusion_c = profile_network({'type': 'VSRNet', 'fusion': 'C', 'num_feat': 4, 'num_feat_hr': 6}, shape=(5, 3, 8, 8),
                               repeats=1, warmup=0)
    assert fusion_c.taps == ['conv_last:input'] and fusion_c.channels == [5 * 6]
    output = profile_network(PerFrameConv(c_out=5), shape=(2, 3, 8, 8), repeats=1, warmup=0, tap='')
    assert output.channels == [5]  # the (1, t, C, H, W) output of a recurrent net: channels on dim 2


def test_missing_default_tap_is_reported_but_a_bad_explicit_tap_is_an_error(fixed_time):
    prof = profile_network(PerFrameConv(), shape=(2, 3, 8, 8), repeats=1, warmup=0)
    assert prof.taps == [] and '| none |' in format_table([prof])
    with pytest.raises(ProfileError, match='conv_hrr'):
        profile_network({'type': 'VSRNet'}, shape=(5, 3, 8, 8), repeats=1, warmup=0, tap='conv_hrr')


def test_demo_option_file_networks_from_both_keys(fixed_time):
    opt, arch_t = profiling.load_network_opt(str(STD_DEMO), 'network_t')
    prof = profile_network(arch_t, shape=(5, 3, 16, 16), repeats=1, warmup=0, net_key='network_t', opt=opt)
    net = build_network(dict(arch_t))
    assert prof.params == sum(p.numel() for p in net.parameters())
    assert prof.tap_source == 'distill.teacher_layer' and prof.channels == [64]
    assert prof.flops > 0


def test_basicvsr_builds_without_spynet_weights(fixed_time):
    full = {'type': 'BasicVSR', 'num_feat': 64, 'num_block': 30, 'spynet_path': None}
    assert count_parameters(build_network(dict(full))) > 6_000_000  # BasicVSR's 6.3 M, no download needed
    small = dict(full, num_feat=8, num_block=1)  # SpyNet's 5-level pyramid needs 64x64 inputs; keep the rest small
    prof = profile_network(small, shape=(2, 3, 64, 64), repeats=1, warmup=0)
    assert prof.mode == 'recurrent' and prof.frames_out == 2
    assert prof.taps == ['conv_last:input'] and prof.channels == [64]
    assert prof.params == sum(p.numel() for p in build_network(dict(small)).parameters())


def test_time_forward_takes_the_median():
    calls = []

    def net(x):
        calls.append(1)
        return x

    seconds = profiling.time_forward(net, torch.zeros(1), repeats=5, warmup=3)
    assert len(calls) == 8 and seconds >= 0
    with pytest.raises(ProfileError, match='repeats'):
        profiling.time_forward(net, torch.zeros(1), repeats=0)


# ---------------------------------------------------------------------------------------------------- the script
def write_opt(path, **nets):
    path.write_text(yaml.safe_dump({'name': path.stem, 'model_type': 'ClipVSRModel', **nets}))
    return str(path)


TINY_VSRNET = {'type': 'VSRNet', 'num_frame': 3, 'num_feat': 4, 'num_feat_hr': 4}
TINY_VESPCN = {'type': 'VESPCN', 'num_frame': 3, 'num_feat': 4, 'num_block': 1, 'num_feat_hr': 4}


def table_rows(text):
    return [line for line in text.splitlines()
            if line.startswith('| ') and not line.startswith(('| network |', '|---|'))]


def test_script_prints_and_writes_one_row_per_network(tmp_path, capsys):
    a = write_opt(tmp_path / 'a.yml', network_g=TINY_VSRNET, network_t=TINY_VESPCN)
    b = write_opt(tmp_path / 'b.yml', network_g=TINY_VESPCN)
    md = tmp_path / 'table.md'
    script = load_script('profile_models')
    rc = script.main([
        '-opt', a, f'{a}:network_t', b, '--arch', '{type: FastDVDnetSR, num_frame: 3, num_feat: 4}', '--shape', '3',
        '3', '8', '8', '--device', 'cpu', '--repeats', '1', '--warmup', '0', '--markdown',
        str(md)
    ])
    out = capsys.readouterr().out
    assert rc == 0
    rows = table_rows(out)
    assert len(rows) == 4
    assert [r.split(' | ')[1] for r in rows] == ['a.yml:network_g', 'a.yml:network_t', 'b.yml:network_g', '--arch']
    assert table_rows(md.read_text()) == rows
    assert 'Device: CPU' in md.read_text()
    assert all('`conv_last:input`' in r for r in rows)
    before = md.read_text()
    assert script.main(['--arch', '{type: VSRNet}', '--markdown', str(md)]) == 2  # refuses to replace it
    assert md.read_text() == before
    assert script.main(['--arch', str(TINY_VSRNET), '--shape', '3', '3', '8', '8', '--device', 'cpu', '--repeats',
                        '1', '--warmup', '0', '--markdown', str(md), '--overwrite']) == 0
    assert len(table_rows(md.read_text())) == 1


def test_script_net_list_and_labels(tmp_path, capsys):
    a = write_opt(tmp_path / 'a.yml', network_g=TINY_VSRNET, network_t=TINY_VESPCN)
    rc = load_script('profile_models').main(['-opt', a, '--net', 'network_g', 'network_t', '--labels', 'student',
                                             'teacher', '--shape', '3', '3', '8', '8', '--device', 'cpu',
                                             '--repeats', '1', '--warmup', '0'])
    rows = table_rows(capsys.readouterr().out)
    assert rc == 0 and [r.split(' | ')[0] for r in rows] == ['| student', '| teacher']


@pytest.mark.parametrize('case, message', [
    ('missing_file', 'option file not found'),
    ('bad_yaml', 'not valid YAML'),
    ('unknown_key', "no network 'network_x'"),
    ('unknown_arch', 'NoSuchArch'),
    ('unknown_kwarg', 'network_g.num_feet'),
    ('bad_arch_yaml', "'type' key"),
    ('labels', '--labels has 2 entries'),
])
def test_script_errors_name_the_file_and_key(tmp_path, capsys, case, message):
    good = write_opt(tmp_path / 'good.yml', network_g=TINY_VSRNET)
    argv = {
        'missing_file': ['-opt', str(tmp_path / 'nope.yml')],
        'bad_yaml': ['-opt', str(tmp_path / 'bad.yml')],
        'unknown_key': ['-opt', good, '--net', 'network_x'],
        'unknown_arch': ['-opt', write_opt(tmp_path / 'arch.yml', network_g={'type': 'NoSuchArch'})],
        'unknown_kwarg': ['-opt', write_opt(tmp_path / 'kw.yml', network_g={'type': 'VSRNet', 'num_feet': 3})],
        'bad_arch_yaml': ['--arch', '[1, 2]'],
        'labels': ['-opt', good, '--labels', 'a', 'b'],
    }[case]
    (tmp_path / 'bad.yml').write_text('network_g: [unclosed\n')
    rc = load_script('profile_models').main(argv + ['--device', 'cpu', '--repeats', '1', '--warmup', '0'])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    if case in ('missing_file', 'unknown_key', 'unknown_kwarg'):
        assert ('nope.yml' if case == 'missing_file' else '.yml') in err


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_script_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    rc = load_script('profile_models').main(['--arch', '{type: VSRNet}', '--device', 'cuda'])
    assert rc == 2 and 'no CUDA device' in capsys.readouterr().err
