"""Run a VSR network over a clip of N LR frames and get N SR frames, whatever its temporal design.

Sliding-window networks (EDVR-style) map 2k+1 LR frames to the centre SR frame: a clip of N frames
becomes N windows with replicated borders, run as one batch. Recurrent networks (BasicVSR-style) take
the whole clip and return every frame. Single-image networks (PAN, MSRResNet, EDSR, RCAN, SwinIR, ...) run
on each of the N frames on their own ('frame' mode), so any image SR network can be a teacher or a student.
Training, validation and distillation all go through here, so the student sees the same frames in every phase.
"""
import inspect

import torch

from basicsr.utils.registry import ARCH_REGISTRY


def temporal_mode(opt, net_key):
    """('sliding', window), ('recurrent', None) or ('frame', 1) for ``opt[net_key]``.

    An explicit ``temporal: {network_g: recurrent | sliding | frame}`` wins; then an arch's own ``TEMPORAL_MODE``
    (PAN declares 'frame'); otherwise a network constructed with a ``num_frame`` argument is a sliding window of
    that many frames, and any other is recurrent. A BasicSR image arch (MSRResNet, EDSR, ...) needs
    ``temporal: {network_t: frame}``.
    """
    net_opt = opt[net_key]
    arch = ARCH_REGISTRY.get(net_opt['type'])
    explicit = (opt.get('temporal') or {}).get(net_key) or getattr(arch, 'TEMPORAL_MODE', None)
    if explicit == 'frame':
        return 'frame', 1
    num_frame = net_opt.get('num_frame')
    if num_frame is None:
        param = inspect.signature(arch.__init__).parameters.get('num_frame')
        if param is not None and param.default is not inspect.Parameter.empty:
            num_frame = param.default
    mode = explicit or ('sliding' if num_frame is not None else 'recurrent')
    if mode == 'sliding':
        if num_frame is None:
            raise ValueError(f"'{net_key}' is declared sliding but has no 'num_frame' option")
        return 'sliding', int(num_frame)
    return 'recurrent', None


def window_indices(num_frames, window, device=None):
    """(N, window) frame indices: frame t's window t-k..t+k with borders replicated."""
    half = window // 2
    offsets = torch.arange(-half, half + 1, device=device)
    centres = torch.arange(num_frames, device=device)
    return (centres[:, None] + offsets[None, :]).clamp_(0, num_frames - 1)


def run_clip(net, lq, mode, window=None, chunk=None):
    """SR of every frame of ``lq`` (B, N, C, h, w) -> (B, N, C, H, W).

    ``chunk`` bounds how many windows (or frames) of a sliding (or single-image) network run at once
    (validation on long clips); training uses a single batch so a feature hook sees one call of shape
    (B*N, C, H, W), B outer, in both modes.
    """
    b, n = lq.shape[:2]
    if mode == 'recurrent':
        out = net(lq)
        if out.dim() != 5 or out.shape[1] != n:
            raise ValueError(f'a recurrent network must return (B, N, C, H, W) with N={n}, got {tuple(out.shape)}')
        return out
    if mode == 'frame':
        windows = lq.flatten(0, 1)  # (B*N, C, h, w): every frame on its own
    else:
        idx = window_indices(n, window, device=lq.device)
        windows = lq[:, idx].flatten(0, 1)  # (B*N, window, C, h, w)
    if chunk is None or chunk >= windows.shape[0]:
        out = net(windows)
    else:
        out = torch.cat([net(windows[i:i + chunk]) for i in range(0, windows.shape[0], chunk)], dim=0)
    return out.view(b, n, *out.shape[1:])
