"""``train.deterministic`` / ``val.deterministic``: reproducible CUDA kernels instead of autotuned ones.

cuDNN autotuning (``benchmark``) picks the fastest algorithm per shape, and that choice may differ between
runs, so it is on only when determinism is not asked for. Even with it on, some CUDA backward kernels stay
non-deterministic (``deform_conv2d`` in EDVR, ``grid_sample`` in flow warping): ``warn_only=True`` lets
those run and warns once instead of stopping the training. On CPU every kernel used here is deterministic.
"""
import os

import torch


def configure_determinism(deterministic):
    """Set cuDNN and PyTorch's algorithm choice for this process; returns the flag as a bool."""
    deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matmuls (read when CUDA initialises)
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return deterministic


def determinism_from_options(opt, is_train):
    """``train.deterministic`` when training, ``val.deterministic`` when testing (default false)."""
    section = opt.get('train') if is_train else opt.get('val')
    return configure_determinism((section or {}).get('deterministic', False))
