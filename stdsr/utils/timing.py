"""Wall-clock timing that measures the computation: CUDA work is queued asynchronously, so wait for it first."""
import torch


def synchronize(device):
    """Wait for the work queued on a CUDA ``device`` (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
