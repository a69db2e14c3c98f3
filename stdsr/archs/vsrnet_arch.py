from torch import nn as nn

from basicsr.utils.registry import ARCH_REGISTRY
from stdsr.archs.arch_util import bicubic_up, check_clip, check_num_frame


class FrameSharedConv2d(nn.Module):
    """One conv applied to each frame's channel group of a (b, t*c_in, h, w) stack, giving (b, t*c_out, h, w).

    Used where VSRNet fuses late: the same filters see every frame, and the output is already the channel-wise
    concatenation the next layer fuses (a single module, so a hook sees the fused map in one call).
    """

    def __init__(self, num_frame, in_ch, out_ch, kernel_size):
        super().__init__()
        self.num_frame = num_frame
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, 1, kernel_size // 2)

    def forward(self, x):
        b, _, h, w = x.size()
        out = self.conv(x.reshape(b * self.num_frame, -1, h, w))
        return out.reshape(b, -1, h, w)


@ARCH_REGISTRY.register()
class VSRNet(nn.Module):
    """VSRNet (Kappeler et al., IEEE TCI 2016): SRCNN-style 9-5-5 network on bicubic-upsampled frames.

    Every layer works at HR resolution, so the whole net is an HR feature extractor. The F^SR tap is
    ``conv_last:input``, the activated last hidden layer, i.e. exactly the features the RGB output conv reads:
    ``num_feat_hr`` channels for fusion A/B (default 32) and ``num_frame * num_feat_hr`` for fusion C (the
    concatenation of the per-frame second layers, which is what the output conv fuses).

    Fusion variants (where the frames meet):
        A: frames concatenated at the input; one 9x9 conv over all of them.
        B (default): one shared 9x9 conv applied to every frame, concatenated, fused by the 5x5 ``conv_hr``.
        C: first and second layers shared per frame, concatenated, fused by the output conv ``conv_last``.

    Deviations from the paper: raw (not motion-compensated) neighbours are fed; RGB instead of Y; zero 'same'
    padding instead of valid convolutions so the output keeps the HR size; in B/C the per-frame filters are tied
    across all frames (the paper has per-frame filters, optionally tied for symmetric offsets); no SRCNN
    pre-training. ``residual=True`` adds the bicubic centre frame to the output (the paper predicts the HR frame
    directly, hence the default False); the output conv then starts at zero, so the net starts at bicubic.

    Args:
        num_in_ch (int): Channels per input frame. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_frame (int): Odd window length; the centre frame is restored. Default: 5.
        scale (int | float): Upsampling factor (any; bicubic does the resizing). Default: 4.
        num_feat (int): Filters of the 9x9 first layer. Default: 64.
        num_feat_hr (int): Filters of the 5x5 second layer (the F^SR tap). Default: 32.
        fusion (str): 'A' | 'B' | 'C'. Default: 'B'.
        residual (bool): Predict a residual over the bicubic centre frame. Default: False.
        kernel_sizes (tuple[int]): Kernel sizes of the three layers. Default: (9, 5, 5).
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_frame=5,
                 scale=4,
                 num_feat=64,
                 num_feat_hr=32,
                 fusion='B',
                 residual=False,
                 kernel_sizes=(9, 5, 5)):
        super().__init__()
        check_num_frame(num_frame)
        fusion = str(fusion).upper()
        if fusion not in ('A', 'B', 'C'):
            raise ValueError(f"fusion must be 'A', 'B' or 'C', got {fusion!r}.")
        if not scale > 0:
            raise ValueError(f'scale must be positive, got {scale}.')
        if residual and num_in_ch != num_out_ch:
            raise ValueError('residual=True needs num_in_ch == num_out_ch.')
        k1, k2, k3 = kernel_sizes
        self.num_in_ch = num_in_ch
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2
        self.scale = scale
        self.fusion = fusion
        self.residual = residual

        if fusion == 'A':
            self.conv_first = nn.Conv2d(num_frame * num_in_ch, num_feat, k1, 1, k1 // 2)
            self.conv_hr = nn.Conv2d(num_feat, num_feat_hr, k2, 1, k2 // 2)
            self.fsr_channels = num_feat_hr
        elif fusion == 'B':
            self.conv_first = FrameSharedConv2d(num_frame, num_in_ch, num_feat, k1)
            self.conv_hr = nn.Conv2d(num_frame * num_feat, num_feat_hr, k2, 1, k2 // 2)
            self.fsr_channels = num_feat_hr
        else:
            self.conv_first = FrameSharedConv2d(num_frame, num_in_ch, num_feat, k1)
            self.conv_hr = FrameSharedConv2d(num_frame, num_feat, num_feat_hr, k2)
            self.fsr_channels = num_frame * num_feat_hr
        self.conv_last = nn.Conv2d(self.fsr_channels, num_out_ch, k3, 1, k3 // 2)
        # not in-place: a hook recording any layer must keep seeing that layer's own output
        self.relu = nn.ReLU()
        if residual:
            # start exactly at bicubic: with PyTorch's default init the residual started ~0.04 (mean absolute) away
            # from it, Adam removed that error by driving conv_hr below zero everywhere, and with every F^SR unit
            # dead a run could stay on the bicubic plateau for good (a 3,200-iteration baseline did; docs/students.md).
            # From zero, conv_last's gradient (features x error) is non-zero at once and the rest follows.
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)

    def forward(self, x):
        """x: (b, t, c, h, w) LR clip -> (b, num_out_ch, h*scale, w*scale) SR centre frame."""
        b, t, c, h, w = check_clip(x, self.num_frame, self.num_in_ch)
        x_up = bicubic_up(x.reshape(b, t * c, h, w), self.scale)
        feat = self.relu(self.conv_first(x_up))
        feat = self.relu(self.conv_hr(feat))
        out = self.conv_last(feat)
        if self.residual:
            ci = self.center_frame_idx
            out = out + x_up[:, ci * c:(ci + 1) * c]
        return out
