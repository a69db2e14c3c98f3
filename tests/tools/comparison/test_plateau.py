"""stdsr.tools.comparison.plateau: the bicubic reference is exactly what a residual student with a dead branch
outputs."""
import os
from os import path as osp

import cv2
import numpy as np
import torch
from basicsr.metrics import calculate_psnr
from basicsr.utils import img2tensor, tensor2img

import stdsr  # noqa: F401
from stdsr.archs.vespcn_arch import VESPCN
from stdsr.tools.comparison.plateau import bicubic_psnr, on_plateau


def test_bicubic_psnr_equals_a_residual_student_whose_branch_outputs_zero(tiny_demo_root, one_thread):
    gt_root, lq_root = osp.join(tiny_demo_root, 'test', 'GT'), osp.join(tiny_demo_root, 'test', 'BIx4')
    ref = bicubic_psnr(gt_root, lq_root, 4)
    net = VESPCN(num_frame=3, num_feat=8, num_block=1, num_feat_hr=4, num_feat_flow=4, residual=True).eval()
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    per_clip = {}
    for clip in sorted(os.listdir(lq_root)):
        names = sorted(os.listdir(osp.join(lq_root, clip)))
        lqs = [img2tensor(cv2.imread(osp.join(lq_root, clip, n)).astype(np.float32) / 255.) for n in names]
        values = []
        for i, name in enumerate(names):
            window = torch.stack([lqs[min(max(j, 0), len(lqs) - 1)] for j in (i - 1, i, i + 1)])[None]
            with torch.no_grad():
                sr = tensor2img(net(window), min_max=(0, 1))
            values.append(calculate_psnr(sr, cv2.imread(osp.join(gt_root, clip, name)), 0, test_y_channel=True))
        per_clip[clip] = float(np.mean(values))
    assert ref['per_clip'] == per_clip
    assert ref['average'] == np.mean(list(per_clip.values()))
    assert all(10 < v < 60 for v in per_clip.values())


def test_on_plateau_margin():
    assert on_plateau(28.05, 28.0) and on_plateau(27.9, 28.0) and not on_plateau(28.2, 28.0)
    assert not on_plateau(None, 28.0) and not on_plateau(28.0, None)
