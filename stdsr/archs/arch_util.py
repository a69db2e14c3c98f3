"""Helpers shared by the project's networks (as ``basicsr/archs/arch_util.py`` is for BasicSR's): input checks that
fail with a readable message instead of a shape error deep inside a conv, and the bicubic base of residual SR."""
from torch.nn import functional as F


def check_clip(x, num_frame, num_in_ch):
    """Validate a sliding-window clip (b, t, c, h, w) up front, so a wrong config fails with a readable message
    instead of a shape error deep inside a conv."""
    if x.dim() != 5:
        raise ValueError(f'Expected a clip of shape (b, t, c, h, w), got shape {tuple(x.shape)}.')
    b, t, c, h, w = x.size()
    if t != num_frame:
        raise ValueError(f'Expected {num_frame} frames (num_frame), got {t}.')
    if c != num_in_ch:
        raise ValueError(f'Expected {num_in_ch} channels per frame (num_in_ch), got {c}.')
    if h < 1 or w < 1:
        raise ValueError(f'Empty spatial size {h}x{w}.')
    return b, t, c, h, w


def check_num_frame(num_frame, min_frame=1):
    """Sliding-window students restore the centre frame, so the window must be odd."""
    if not isinstance(num_frame, int) or num_frame < min_frame or num_frame % 2 == 0:
        raise ValueError(f'num_frame must be an odd integer >= {min_frame}, got {num_frame}.')


def bicubic_up(x, scale):
    """Bicubic resize for inputs and residual bases; align_corners=False keeps LR and HR pixel centres aligned."""
    return F.interpolate(x, scale_factor=scale, mode='bicubic', align_corners=False)
