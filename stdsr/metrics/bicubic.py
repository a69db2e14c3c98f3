"""The bicubic up-sampling every VSR table starts with, and that the teacher check and plateau flags compare with.

One function, two conventions, named by ``impl``:
- ``'matlab'`` (the default, the tables' convention): BasicSR's ``imresize``, MATLAB's bicubic (a = -0.5,
  symmetric borders), the "Bicubic" rows of the VSR literature; it runs on the CPU.
- ``'torch'``: ``F.interpolate(mode='bicubic', align_corners=False)`` (a = -0.75, replicated borders), the
  up-sampling the students' residual paths use (``stdsr.archs.vsrnet_arch.bicubic_up``); faster and on any
  device, but a few tenths of a dB away from MATLAB.
"""
import torch
from torch.nn import functional as F

from basicsr.utils.matlab_functions import imresize

BICUBIC_IMPLS = ('matlab', 'torch')


def bicubic_upsample(frames, scale, impl='matlab'):
    """(N, C, h, w) frames in [0, 1] -> (N, C, h*scale, w*scale) by bicubic interpolation, clamped to [0, 1]."""
    if impl not in BICUBIC_IMPLS:
        raise ValueError(f"bicubic implementation must be one of {BICUBIC_IMPLS}, got '{impl}'")
    if impl == 'torch':
        out = F.interpolate(frames, scale_factor=scale, mode='bicubic', align_corners=False)
    else:
        out = torch.stack([imresize(frame, scale) for frame in frames.float().cpu()]).to(frames.device)
    return out.clamp_(0, 1)
