import warnings

import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr.archs.arch_util import ResidualBlockNoBN, default_init_weights, flow_warp, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from stdsr.archs.arch_util import bicubic_up, check_clip, check_num_frame


def warp(x, flow):
    """BasicSR's ``flow_warp`` (border padding) without the torch.meshgrid warning it raises in every process.

    ``flow_warp`` calls ``torch.meshgrid`` without ``indexing``; its 'ij' default is what BasicSR means, so the
    warning is third-party noise that every training, validation, inference and benchmark run would print.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'torch\.meshgrid: in an upcoming release', category=UserWarning)
        return flow_warp(x, flow, padding_mode='border')


def _flow_head(in_ch, num_feat, strides_kernels, out_ch, up):
    """Strided conv stack ending in tanh and a sub-pixel shuffle back to full resolution (one VESPCN flow branch)."""
    layers = []
    for kernel, stride in strides_kernels:
        layers += [nn.Conv2d(in_ch, num_feat, kernel, stride, kernel // 2), nn.ReLU()]
        in_ch = num_feat
    last = nn.Conv2d(num_feat, out_ch, 3, 1, 1)
    # small start: the first warps are near-identity, but every layer still gets gradient from step one
    default_init_weights(last, scale=0.1)
    layers += [last, nn.Tanh(), nn.PixelShuffle(up)]
    return nn.Sequential(*layers)


class MotionCompensation(nn.Module):
    """VESPCN's multi-scale spatial-transformer motion compensation.

    A coarse branch (two stride-2 convs, x4 sub-pixel back up) estimates a flow from the neighbour to the reference;
    a fine branch (one stride-2 conv, x2 sub-pixel) sees the pair, the coarse flow and the coarsely warped neighbour
    and adds a correction. Flows leave the tanh in the spatial transformer's normalised [-1, 1] units (as in the
    paper) and are returned in pixels for ``flow_warp`` (:func:`warp`). Frames are replicate-padded to a multiple
    of 4 and the flow cropped back, so any spatial size works.
    """

    def __init__(self, num_in_ch=3, num_feat=24):
        super().__init__()
        self.coarse = _flow_head(2 * num_in_ch, num_feat, [(5, 2), (3, 1), (5, 2), (3, 1), (3, 1)], 2 * 16, 4)
        self.fine = _flow_head(3 * num_in_ch + 2, num_feat, [(5, 2), (3, 1), (3, 1), (3, 1)], 2 * 4, 2)

    @staticmethod
    def to_pixels(flow, h, w):
        """Normalised (align_corners=True) offsets -> pixel offsets, the unit ``flow_warp`` expects."""
        return torch.cat([flow[:, :1] * (w - 1) / 2, flow[:, 1:] * (h - 1) / 2], dim=1)

    def forward(self, ref, nbr):
        """ref, nbr: (n, c, h, w). Returns the flow (n, 2, h, w) in pixels that warps nbr onto ref."""
        h, w = ref.shape[-2:]
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        if ph or pw:
            ref = F.pad(ref, (0, pw, 0, ph), mode='replicate')
            nbr = F.pad(nbr, (0, pw, 0, ph), mode='replicate')
        hp, wp = h + ph, w + pw
        coarse = self.coarse(torch.cat([ref, nbr], dim=1))
        nbr_coarse = warp(nbr, self.to_pixels(coarse, hp, wp).permute(0, 2, 3, 1))
        fine = self.fine(torch.cat([ref, nbr, coarse, nbr_coarse], dim=1))
        flow = self.to_pixels(coarse + fine, hp, wp)
        return flow[:, :, :h, :w]


class ResidualTrunk(nn.Module):
    """Fusion conv, ``num_block`` EDSR residual blocks (BasicSR's ``ResidualBlockNoBN``) and a long skip.

    Skips are what lets a VSR trunk grow deep (EDSR, EDVR's reconstruction): a teacher option, so that a teacher can be
    made much larger than its students. On the CPU demo data it is no better than the plain 64x6 trunk on unseen
    photos (docs/results.md): there the teacher is short of training content, not of depth.
    """

    def __init__(self, in_ch, num_feat, num_block, res_scale=1.0):
        super().__init__()
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.blocks = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale)
        self.conv_after = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        feat = self.relu(self.conv_first(x))
        return self.relu(feat + self.conv_after(self.blocks(feat)))


@ARCH_REGISTRY.register()
class VESPCN(nn.Module):
    """VESPCN (Caballero et al., CVPR 2017): motion compensation + early-fusion spatio-temporal ESPCN.

    Every neighbour is warped onto the centre frame by ``MotionCompensation`` (shared across neighbours, reusing
    BasicSR's ``flow_warp``), the compensated frames and the centre are concatenated (early fusion) and an ESPCN
    trunk of ``1 + num_block`` 3x3 convs runs at LR. The paper's sub-pixel conv maps straight to RGB, leaving no HR
    feature map; we split it: ``upconv`` + PixelShuffle gives ``num_feat_hr`` HR channels, ``conv_hr`` refines them
    and ``conv_last`` maps to RGB. The F^SR tap is ``conv_last:input``: the activated ``conv_hr`` features that the
    output conv reads (``num_feat_hr`` channels, default 16), taken the same way as for EDVR/BasicVSR.

    ``trunk='residual'`` replaces the plain conv stack by ``ResidualTrunk`` (``num_block`` EDSR residual blocks and a
    long skip): a teacher option, for a teacher far deeper than its students.

    Deviations: RGB instead of Y; ReLU trunk; the extra HR conv above; no built-in warping/flow-smoothness loss
    (set ``keep_flows=True`` to keep ``last_flows`` (b, t-1, 2, h, w, pixels) and ``last_warped``
    (b, t-1, c, h, w), neighbours in temporal order, with their graphs, to add one). ``residual=True`` adds the
    bicubic centre frame; the paper (like ESPCN) predicts the HR frame directly, hence the default False.

    Args:
        num_in_ch (int): Channels per input frame. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_frame (int): Odd window length; the centre frame is restored. Default: 5.
        scale (int): Upsampling factor, any integer (a single sub-pixel step). Default: 4.
        num_feat (int): Trunk width at LR. Default: 48.
        num_block (int): 3x3 conv+ReLU layers after the fusion conv. Default: 4.
        num_feat_hr (int): HR feature width (the F^SR tap). Default: 16.
        num_feat_flow (int): Width of the flow branches (paper: 24). Default: 24.
        residual (bool): Predict a residual over the bicubic centre frame. Default: False.
        trunk (str): 'plain' (the paper's conv stack, ``1 + num_block`` convs) or 'residual' (``ResidualTrunk``).
            Default: 'plain'.
        res_scale (float): Residual scaling of the residual trunk's blocks. Default: 1.0.
        keep_flows (bool): Keep flows and warped neighbours of the last forward on the module. Default: False.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_frame=5,
                 scale=4,
                 num_feat=48,
                 num_block=4,
                 num_feat_hr=16,
                 num_feat_flow=24,
                 residual=False,
                 trunk='plain',
                 res_scale=1.0,
                 keep_flows=False):
        super().__init__()
        check_num_frame(num_frame)
        if int(scale) != scale or scale < 1:
            raise ValueError(f'scale must be a positive integer, got {scale}.')
        if trunk not in ('plain', 'residual'):
            raise ValueError(f"trunk must be 'plain' or 'residual', got {trunk!r}.")
        if residual and num_in_ch != num_out_ch:
            raise ValueError('residual=True needs num_in_ch == num_out_ch.')
        self.num_in_ch = num_in_ch
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2
        self.scale = int(scale)
        self.residual = residual
        self.keep_flows = keep_flows
        self.fsr_channels = num_feat_hr
        self.last_flows = None
        self.last_warped = None

        if num_frame > 1:
            self.motion_comp = MotionCompensation(num_in_ch, num_feat_flow)
        if trunk == 'residual':
            self.body = ResidualTrunk(num_frame * num_in_ch, num_feat, num_block, res_scale)
        else:
            body = [nn.Conv2d(num_frame * num_in_ch, num_feat, 3, 1, 1), nn.ReLU()]
            for _ in range(num_block):
                body += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU()]
            self.body = nn.Sequential(*body)
        self.upconv = nn.Conv2d(num_feat, num_feat_hr * self.scale**2, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(self.scale)
        self.conv_hr = nn.Conv2d(num_feat_hr, num_feat_hr, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat_hr, num_out_ch, 3, 1, 1)
        # not in-place: a hook recording any layer must keep seeing that layer's own output
        self.relu = nn.ReLU()

    def compensate(self, x):
        """Warp every neighbour of the clip (b, t, c, h, w) onto its centre; returns (warped, flows)."""
        b, t, c, h, w = x.size()
        ci = self.center_frame_idx
        nbr = torch.cat([x[:, :ci], x[:, ci + 1:]], dim=1).reshape(-1, c, h, w)
        ref = x[:, ci:ci + 1].expand(-1, t - 1, -1, -1, -1).reshape(-1, c, h, w)
        flow = self.motion_comp(ref, nbr)
        warped = warp(nbr, flow.permute(0, 2, 3, 1))
        return warped.view(b, t - 1, c, h, w), flow.view(b, t - 1, 2, h, w)

    def forward(self, x):
        """x: (b, t, c, h, w) LR clip -> (b, num_out_ch, h*scale, w*scale) SR centre frame."""
        b, t, c, h, w = check_clip(x, self.num_frame, self.num_in_ch)
        ci = self.center_frame_idx
        center = x[:, ci]
        if t > 1:
            warped, flows = self.compensate(x)
            if self.keep_flows:
                self.last_flows, self.last_warped = flows, warped
            frames = torch.cat([warped[:, :ci], center.unsqueeze(1), warped[:, ci:]], dim=1)
        else:
            frames = x
        feat = self.body(frames.reshape(b, t * c, h, w))
        feat = self.relu(self.pixel_shuffle(self.upconv(feat)))
        feat = self.relu(self.conv_hr(feat))
        out = self.conv_last(feat)
        if self.residual:
            out = out + bicubic_up(center, self.scale)
        return out
