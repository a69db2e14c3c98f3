"""PAN (Zhao et al., *Efficient Image Super-Resolution Using Pixel Attention*, ECCV 2020 Workshops).

A single-image network of 272k parameters (x4) whose published DF2K weights are far better than any compact VSR
student trained on this project's data: the frozen teacher of the heterogeneous study (docs/results.md). Written
from the paper and the layer list of ``../shared/pretrained/README.md``; the module names are those of the published
state_dict, so it loads strictly with no renaming. Its F^SR (``conv_last:input``) is the last HR feature map,
``unf`` channels at the output resolution. It has no temporal input: in a VSR model it runs frame by frame
(``TEMPORAL_MODE = 'frame'``, see ``stdsr.archs.clip_runner``).
"""
import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr.utils.registry import ARCH_REGISTRY

_NEG_SLOPE = 0.2


class PixelAttention(nn.Module):
    """PA: x * sigmoid(1x1 conv(x)), a per-pixel, per-channel gate (the paper's Fig. 2)."""

    def __init__(self, num_feat):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """The attention branch of SCPA: a 3x3 conv gated by a 1x1-conv pixel attention, then a 3x3 conv."""

    def __init__(self, num_feat):
        super().__init__()
        self.k2 = nn.Conv2d(num_feat, num_feat, 1)
        self.k3 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.k4 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)

    def forward(self, x):
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: two half-width branches (plain 3x3 conv; PAConv), concatenated,
    fused by a 1x1 conv and added to the block's input."""

    def __init__(self, num_feat, reduction=2):
        super().__init__()
        half = num_feat // reduction
        self.conv1_a = nn.Conv2d(num_feat, half, 1, bias=False)
        self.conv1_b = nn.Conv2d(num_feat, half, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(half, half, 3, padding=1, bias=False))
        self.PAConv = PAConv(half)
        self.conv3 = nn.Conv2d(half * reduction, num_feat, 1, bias=False)

    def forward(self, x):
        a = F.leaky_relu(self.conv1_a(x), _NEG_SLOPE)
        b = F.leaky_relu(self.conv1_b(x), _NEG_SLOPE)
        a = F.leaky_relu(self.k1(a), _NEG_SLOPE)
        b = F.leaky_relu(self.PAConv(b), _NEG_SLOPE)
        return x + self.conv3(torch.cat([a, b], dim=1))


@ARCH_REGISTRY.register()
class PAN(nn.Module):
    """PAN: conv, ``nb`` SCPA blocks with a trunk conv and a long skip, then per x2 (or x3) step a nearest
    up-sampling, a conv to ``unf`` channels, pixel attention and an HR conv; the output adds the bilinearly
    up-sampled input.

    Args:
        num_in_ch, num_out_ch (int): image channels (3).
        nf (int): trunk width (40 in the published x4 weights).
        unf (int): width of the up-sampling (HR) features, the F^SR width (24).
        nb (int): number of SCPA blocks (16).
        scale (int): 2, 3 or 4 (x4 is two x2 steps, as the published weights).
    """

    TEMPORAL_MODE = 'frame'  # a single-image network: a VSR model runs it on each frame of a clip

    def __init__(self, num_in_ch=3, num_out_ch=3, nf=40, unf=24, nb=16, scale=4):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f'PAN supports scale 2, 3 or 4, got {scale}')
        self.scale = scale
        self.conv_first = nn.Conv2d(num_in_ch, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.steps = [2, 2] if scale == 4 else [scale]
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PixelAttention(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PixelAttention(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, num_out_ch, 3, padding=1)

    def _up(self, fea, factor, upconv, att, hrconv):
        fea = upconv(F.interpolate(fea, scale_factor=factor, mode='nearest'))
        fea = F.leaky_relu(att(fea), _NEG_SLOPE)
        return F.leaky_relu(hrconv(fea), _NEG_SLOPE)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f'PAN takes single images (b, c, h, w), got shape {tuple(x.shape)}; in a VSR model '
                             "it runs frame by frame (temporal mode 'frame')")
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        fea = self._up(fea, self.steps[0], self.upconv1, self.att1, self.HRconv1)
        if self.scale == 4:
            fea = self._up(fea, 2, self.upconv2, self.att2, self.HRconv2)
        base = F.interpolate(x, scale_factor=self.scale, mode='bilinear', align_corners=False)
        return self.conv_last(fea) + base
