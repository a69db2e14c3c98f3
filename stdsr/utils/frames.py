"""8-bit frames <-> tensors, one convention: frames are HWC uint8 BGR (OpenCV's), tensors RGB floats in [0, 1]."""
import numpy as np
import torch


def frames_to_clip(frames):
    """HWC uint8 BGR frames -> (1, N, 3, h, w) float RGB tensor in [0, 1]."""
    arr = np.stack([f[..., ::-1] for f in frames]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.)[None]


def tensor_to_frames(frames):
    """(N, 3, H, W) RGB float tensor in [0, 1] -> list of HWC uint8 BGR frames (BasicSR's ``tensor2img`` rounding)."""
    arr = frames.detach().float().cpu().clamp_(0, 1).numpy().transpose(0, 2, 3, 1)[..., ::-1]
    return [np.ascontiguousarray((f * 255.0).round().astype(np.uint8)) for f in arr]
