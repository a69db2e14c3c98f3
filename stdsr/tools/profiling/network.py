"""Cost of a VSR network per output frame: parameters, FLOPs, runtime, and where its F^SR tap is.

Students and teachers differ in temporal design: a sliding-window network (EDVR, the students) reads a window
of frames and returns one SR frame, a recurrent one (BasicVSR) reads t frames and returns t, a single-image one
(PAN, temporal mode 'frame') reads one frame and returns it. Every number here is therefore divided by the frames a
forward pass returns, so the kinds compare per output frame.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: 2 x multiply-accumulates of convolutions and
matrix products; bias adds, activations, interpolation and ``grid_sample`` warps are not counted. Deformable
convolutions (torchvision's op, used by BasicSR's EDVR) are unknown to torch's counter and are counted here as
the equivalent dense convolution (their bilinear sampling is not counted).
"""
import statistics
import time
from copy import deepcopy
from dataclasses import dataclass
from math import prod

import torch
from torch import nn as nn
from torch.utils.flop_counter import FlopCounterMode

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from stdsr.errors import ProfileError
from stdsr.archs.clip_runner import temporal_mode
from stdsr.distill.feature_hooks import FeatureRecorder, UnknownModulePathError, fsr_tap, unwrap_network
from stdsr.config.options import OptionError, check_typed_section, load_yaml
from stdsr.utils.timing import synchronize
from stdsr.utils.modules import count_parameters
from stdsr.utils.tables import markdown_table

__all__ = [
    'NetworkProfile', 'ProfileError', 'count_flops', 'count_parameters', 'format_table',
    'load_network_opt', 'output_frames', 'probe_tap_channels', 'profile_network', 'resolve_tap', 'time_forward'
]

LAYER_KEY = {'network_g': 'student_layer', 'network_t': 'teacher_layer'}


@dataclass
class NetworkProfile:
    """One table row. ``flops`` and ``seconds`` are per output frame; ``channels`` lines up with ``taps``."""
    label: str
    source: str
    arch: str
    mode: str
    input_shape: tuple
    frames_out: int
    params: int
    flops: float
    seconds: float
    taps: list
    tap_source: str
    channels: list
    device: str


# ---------------------------------------------------------------------------------------------------- counting
def _deform_conv_flop(x_shape, w_shape, *args, out_shape=None, **kwargs):
    """torchvision::deform_conv2d as the dense conv it replaces: 2 * B * Hout * Wout * Cout * Cin/g * kh * kw."""
    return 2 * x_shape[0] * prod(out_shape[2:]) * prod(w_shape)


def _custom_flop_formulas():
    formulas = {}
    ops = getattr(torch.ops, 'torchvision', None)
    try:
        formulas[ops.deform_conv2d] = _deform_conv_flop
    except (AttributeError, RuntimeError):
        pass  # torchvision's ops are not loaded: no deformable conv can run either
    return formulas


@torch.no_grad()
def count_flops(net, inputs):
    """FLOPs of one forward pass of ``net(inputs)`` (torch's counter plus deformable convs); returns (flops, out)."""
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    with counter:
        out = net(inputs)
    return counter.get_total_flops(), out


@torch.no_grad()
def time_forward(net, inputs, repeats=10, warmup=2):
    """Median wall time (s) of ``repeats`` forward passes after ``warmup`` untimed ones (CUDA synchronised)."""
    if repeats < 1 or warmup < 0:
        raise ProfileError(f'repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}')
    for _ in range(warmup):
        net(inputs)
    synchronize(inputs.device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(inputs)
        synchronize(inputs.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def output_frames(mode, num_input_frames):
    """Frames one forward pass returns: 1 for a sliding window or a single-image network, all of them for a
    recurrent network."""
    if mode in ('sliding', 'frame'):
        return 1
    if mode == 'recurrent':
        return num_input_frames
    raise ProfileError(f"temporal mode must be 'sliding', 'recurrent' or 'frame', got {mode!r}")


# ---------------------------------------------------------------------------------------------------- options
def load_network_opt(opt_path, net_key='network_g'):
    """(option dict, network section) of an option file; a missing file or key is an error naming both."""
    opt = load_yaml(opt_path)
    if net_key not in opt:
        nets = sorted(k for k in opt if str(k).startswith('network_'))
        raise ProfileError(f"{opt_path}: no network '{net_key}'; the file defines {nets or 'no network_* key'}")
    try:
        check_typed_section(opt[net_key], net_key, lambda name: ARCH_REGISTRY.get(name), f'{opt_path}: ')
    except OptionError as err:
        raise ProfileError(str(err)) from None
    return opt, opt[net_key]


def resolve_tap(net, net_key='network_g', opt=None, tap=None):
    """(taps, source): ``tap`` > the option file's distill layer for ``net_key`` > the arch's ``FSR_TAP`` > F^SR, the
    input of ``conv_last`` (``stdsr.distill.feature_hooks.FSR_TAP``).

    The distill layer is ``distill.student_layer`` for network_g and ``teacher_layer`` for network_t, else the
    per-loss overrides (in file order). Lists are kept: a loss may read several layers.
    """
    if tap is not None:
        return _as_list(tap), 'given'
    distill = (opt or {}).get('distill') or {}
    layer_key = LAYER_KEY.get(net_key)
    if layer_key:
        if distill.get(layer_key) is not None:
            return _as_list(distill[layer_key]), f'distill.{layer_key}'
        layers = []
        for loss_opt in (distill.get('losses') or {}).values():
            layers += [layer for layer in _as_list((loss_opt or {}).get(layer_key)) if layer not in layers]
        if layers:
            return layers, f'distill.losses.*.{layer_key}'
    # conv_last:input unless the arch declares FSR_TAP; a network without that module is reported without a tap
    return [fsr_tap(net)], 'FSR_TAP' if hasattr(unwrap_network(net), 'FSR_TAP') else 'default'


def _as_list(layer):
    if layer is None:
        return []
    return list(layer) if isinstance(layer, (list, tuple)) else [layer]


def _build(arch_opt, where):
    try:
        return build_network(deepcopy(dict(arch_opt)))
    except Exception as err:  # a constructor's own checks: keep its message, add where it came from
        raise ProfileError(f'{where}: cannot build {arch_opt.get("type")}: {type(err).__name__}: {err}') from err


# ---------------------------------------------------------------------------------------------------- probing
def probe_tap_channels(net, taps, run):
    """Channels of each tap's output during ``run()`` (None for a tap that never fired); hooks removed after.

    An output of rank 5 (a recurrent network's own output, tap '') has its channels on dim 2.
    """
    with FeatureRecorder(net, taps, detach=True) as recorder:
        result = run()
    channels = []
    for path in taps:
        calls = recorder.records[path]
        channels.append(None if not calls else int(calls[0].shape[2 if calls[0].dim() == 5 else 1]))
    return channels, result


def _input_shape(shape, mode, window):
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise ProfileError(f'input shape must be 4 positive integers t c h w, got {tuple(shape)}')
    t, c, h, w = (int(s) for s in shape)
    if mode == 'frame':  # a single-image network reads one (c, h, w) frame, whatever t is
        return (c, h, w)
    # a sliding network always reads its own window, whatever t is: its cost per output frame does not depend on t
    return (window if mode == 'sliding' else t, c, h, w)


def profile_network(arch_or_net,
                    shape=(5, 3, 64, 64),
                    device='cpu',
                    repeats=10,
                    warmup=2,
                    tap=None,
                    net_key='network_g',
                    opt=None,
                    mode=None,
                    label=None,
                    source=''):
    """Profile one network at LR input ``shape`` (t, c, h, w), batch 1, in eval mode without gradients.

    Args:
        arch_or_net (dict | nn.Module): An arch section (``{type: EDVR, ...}``) or a built network.
        shape (tuple): (t, c, h, w). Recurrent networks get t frames and return t; sliding ones get their own
            window (``num_frame``) and return one frame; single-image ones ('frame') get one (c, h, w) frame.
        device (str | torch.device): Where to build and run.
        repeats, warmup (int): Timed and untimed forward passes.
        tap (str | list | None): F^SR module path(s); None resolves it (see :func:`resolve_tap`).
        net_key (str): The key the arch has in ``opt`` (for the temporal mode and the distill layer).
        opt (dict | None): The whole option file, if any (``temporal``, ``distill``).
        mode (str | None): 'sliding' | 'recurrent' | 'frame' for a built network (default: 'frame' when it
            declares ``TEMPORAL_MODE = 'frame'``, else from its ``num_frame``); derived from the arch otherwise.
        label, source (str): Row label and where the network came from.
    """
    where = source or label or 'network'
    if isinstance(arch_or_net, nn.Module):
        net = arch_or_net
        arch = type(net).__name__
        if mode is None and getattr(net, 'TEMPORAL_MODE', None) == 'frame':
            mode, window = 'frame', 1
        elif mode is None:
            num_frame = getattr(net, 'num_frame', None)
            mode, window = ('sliding', num_frame) if num_frame else ('recurrent', None)
        else:
            window = getattr(net, 'num_frame', None)
            if mode == 'sliding' and not window:
                raise ProfileError(f'{where}: a sliding network needs a num_frame attribute')
    else:
        arch_opt = dict(arch_or_net)
        if 'type' not in arch_opt:
            raise ProfileError(f"{where}: the network section has no 'type' key")
        arch = arch_opt['type']
        net = _build(arch_opt, where)
        full_opt = dict(opt or {})
        full_opt[net_key] = arch_opt
        if mode is not None:
            full_opt['temporal'] = {net_key: mode}
        try:
            mode, window = temporal_mode(full_opt, net_key)
        except ValueError as err:
            raise ProfileError(f'{where}: {err}') from None
    output_frames(mode, 1)  # reject unknown modes early

    device = torch.device(device)
    net = net.to(device).eval()
    in_shape = _input_shape(shape, mode, window)
    inputs = torch.rand(1, *in_shape, device=device)
    taps, tap_source = resolve_tap(net, net_key, opt, tap)

    try:
        channels, (flops, out) = probe_tap_channels(net, taps, lambda: count_flops(net, inputs))
    except UnknownModulePathError as err:
        if tap_source != 'default':
            raise ProfileError(f'{where}: F^SR tap from {tap_source}: {err}') from None
        taps, channels = [], []  # no conv_hr and nothing asked for: report no tap rather than fail
        flops, out = count_flops(net, inputs)
    except Exception as err:
        raise ProfileError(f'{where}: forward pass of {arch} on input (1, {", ".join(map(str, in_shape))}) '
                           f'failed: {type(err).__name__}: {err}') from err
    frames = output_frames(mode, in_shape[0])
    if mode == 'recurrent' and (out.dim() != 5 or out.shape[1] != frames):
        raise ProfileError(f'{where}: a recurrent network must return (1, t, C, H, W) with t={frames}, got '
                           f'{tuple(out.shape)}; set temporal: {{{net_key}: sliding}} if it is a sliding window')
    seconds = time_forward(net, inputs, repeats, warmup)
    return NetworkProfile(
        label=label or arch,
        source=source,
        arch=arch,
        mode=mode,
        input_shape=in_shape,
        frames_out=frames,
        params=count_parameters(net),
        flops=flops / frames,
        seconds=seconds / frames,
        taps=taps,
        tap_source=tap_source,
        channels=channels,
        device=str(device))


# ---------------------------------------------------------------------------------------------------- table
TABLE_HEADER = ('network', 'source', 'mode', 'input t×c×h×w', 'F^SR tap', 'F^SR ch', 'params', 'GFLOPs / frame',
                'ms / frame')


def _row(p):
    taps = ', '.join(f'`{t}`' if t else "`''` (output)" for t in p.taps) or 'none'
    channels = ', '.join('not called' if c is None else str(c) for c in p.channels) or '—'
    mode = {'recurrent': 'recurrent', 'frame': 'frame (1→1)'}.get(p.mode, f'sliding ({p.input_shape[0]}→1)')
    return (p.label, p.source or '—', mode, '×'.join(map(str, p.input_shape)), taps, channels, f'{p.params:,}',
            f'{p.flops / 1e9:.3f}', f'{p.seconds * 1e3:.1f}')


def format_table(profiles):
    """Markdown table, one row per profile."""
    return '\n'.join(markdown_table(TABLE_HEADER, [_row(p) for p in profiles], 'lllllrrrr'))
