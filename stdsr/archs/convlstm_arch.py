import torch
from torch import nn as nn

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class ConvLSTM(nn.Module):
    """Single-layer convolutional LSTM (Shi et al., NeurIPS 2015), used by time distillation (STD).

    The four gates come from one convolution over concat(x_t, h_{t-1}) (same padding), in the order i, f, o, g:
    ``c_t = f * c_{t-1} + i * g`` and ``h_t = o * tanh(c_t)``, starting from a zero state.

    The forget-gate bias starts at 1 (Jozefowicz et al., 2015) so that, before any training, the cell keeps most
    of its memory: the final cell state c_N, which STD compares, then depends on all N frames instead of being
    dominated by the last one, and its gradients reach the early frames.

    Args:
        in_channels (int): Channels of each input frame.
        hidden_channels (int): Channels of h and c. Default: 16.
        kernel_size (int): Odd kernel size of the gate convolution. Default: 3.
    """

    def __init__(self, in_channels, hidden_channels=16, kernel_size=3):
        super(ConvLSTM, self).__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'ConvLSTM kernel_size must be odd for same padding, got {kernel_size}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size, 1, kernel_size // 2)
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden_channels:2 * hidden_channels].fill_(1.0)

    def step(self, x, state):
        """One time step: x (B, C, H, W), state (h, c) -> new (h, c)."""
        h, c = state
        gates = self.conv(torch.cat([x, h], dim=1))
        i, f, o, g = torch.split(gates, self.hidden_channels, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def forward(self, seq):
        """
        Args:
            seq (Tensor): (B, N, C, H, W) frames in temporal order.

        Returns:
            tuple: outputs (B, N, hidden, H, W) (h_t of every step) and the final state (h_N, c_N).
        """
        if seq.dim() != 5 or seq.size(2) != self.in_channels:
            raise ValueError(f'ConvLSTM expects (B, N, {self.in_channels}, H, W), got {tuple(seq.shape)}')
        b, n, _, height, width = seq.shape
        h = seq.new_zeros(b, self.hidden_channels, height, width)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(n):
            h, c = self.step(seq[:, t], (h, c))
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)
