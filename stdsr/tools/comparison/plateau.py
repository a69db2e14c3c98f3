"""The bicubic plateau: a residual student whose learnt branch died outputs its own bicubic up-sampling.

VESPCN, VSRNet and FastDVDnet-SR with ``residual: true`` add ``bicubic_up`` (the ``'torch'`` convention of
:func:`stdsr.metrics.bicubic.bicubic_upsample`: ``F.interpolate(mode='bicubic',
align_corners=False)``, :mod:`stdsr.archs.vsrnet_arch`) of the centre LR frame to what their branch predicts. A
run whose branch has learnt nothing therefore ends at exactly that up-sampling's PSNR, which is *not* MATLAB
bicubic (the ``--bicubic matlab`` row of benchmark.py). ``bicubic_psnr`` measures the same up-sampling on a test
set, scored like the harness scores a model (PSNR on Y of the uint8 frames, per clip then over clips), so a
gain can be flagged when the run it comes from sits within ``PLATEAU_DB`` of it.
"""
import os
from os import path as osp

import cv2
import numpy as np

PLATEAU_DB = 0.1  # a run ending within this of the student's own bicubic up-sampling learnt (almost) nothing
IMG_EXTS = ('.png', '.jpg', '.jpeg', '.bmp')


def _frames(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTS))


def bicubic_psnr(gt_root, lq_root, scale, crop_border=0, impl='torch'):
    """PSNR-Y of ``bicubic_up`` of every LR frame against its GT: {'average': dB, 'per_clip': {clip: dB}}.

    Every frame of a clip is up-sampled (the sliding students restore every frame as the centre of its window).
    ``impl='matlab'`` scores MATLAB-style bicubic instead, the paper's (and ``make demo``'s) "Bicubic" row, which
    differs from the students' own path by a few tenths of a dB: reports name which one they show.
    """
    import torch
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import img2tensor, tensor2img

    from stdsr.metrics.bicubic import bicubic_upsample

    per_clip = {}
    for clip in sorted(d for d in os.listdir(lq_root) if osp.isdir(osp.join(lq_root, d))):
        gt_dir, lq_dir = osp.join(gt_root, clip), osp.join(lq_root, clip)
        if not osp.isdir(gt_dir):
            raise FileNotFoundError(f'{gt_dir}: no GT clip for LR clip {clip}')
        values = []
        for name in _frames(lq_dir):
            lq = cv2.imread(osp.join(lq_dir, name), cv2.IMREAD_COLOR).astype(np.float32) / 255.
            gt_path = osp.join(gt_dir, name)
            gt = cv2.imread(gt_path, cv2.IMREAD_COLOR)
            if gt is None:
                raise FileNotFoundError(f'{gt_path}: missing or unreadable GT frame')
            with torch.no_grad():
                up = bicubic_upsample(img2tensor(lq, bgr2rgb=True, float32=True).unsqueeze(0), scale, impl=impl)
            sr = tensor2img(up, rgb2bgr=True, min_max=(0, 1))  # clamp and round as a model's output is
            values.append(calculate_psnr(sr, gt, crop_border=crop_border, test_y_channel=True))
        if values:
            per_clip[clip] = float(np.mean(values))
    if not per_clip:
        raise FileNotFoundError(f'{lq_root}: no clip folders with frames')
    return {'average': float(np.mean(list(per_clip.values()))), 'per_clip': per_clip}


def on_plateau(psnr, bicubic, margin=PLATEAU_DB):
    """True when a run's PSNR is within ``margin`` dB of (or below) the bicubic up-sampling's."""
    return psnr is not None and bicubic is not None and psnr - bicubic < margin
