"""Stop before a deformable convolution reads non-finite or absurd offsets.

torchvision's ``deform_conv2d`` turns its offsets into memory indices: NaN, Inf or astronomically large offsets
(a forward whose weights blew up, e.g. ``lr: 1e9``) crash the process with a segmentation fault instead of
raising, so the non-finite-loss check after the forward never ran. A hook on each offset branch raises the
documented error first.
"""
import torch

from stdsr.errors import NonFiniteLossError

# pixels: far beyond any frame, far inside the kernel's integer range
MAX_OFFSET = 1e4


def _offset_hook(path):

    def hook(module, inputs, output):
        with torch.no_grad():
            worst = output.detach().abs().amax() if output.numel() else output.new_zeros(())
            if not bool(torch.isfinite(worst)) or float(worst) > MAX_OFFSET:
                raise NonFiniteLossError(f'non-finite or exploded deformable-convolution offsets in {path} (largest '
                                         f'|offset| {float(worst)}): the weights have blown up (is the learning rate '
                                         'too large?); stopped before the convolution could crash the process')

    return hook


def guard_deformable_offsets(net):
    """Register the offset check on every deformable convolution of ``net`` (modules with a ``conv_offset``
    branch and ``deformable_groups``); returns the hook handles."""
    handles = []
    for path, module in net.named_modules():
        branch = getattr(module, 'conv_offset', None)
        if isinstance(branch, torch.nn.Module) and hasattr(module, 'deformable_groups'):
            handles.append(branch.register_forward_hook(_offset_hook(f'{path}.conv_offset' if path else 'conv_offset')))
    return handles
