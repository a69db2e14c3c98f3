"""Teacher sanity check: score the frozen teacher once on the validation clips before distilling from it.

A checkpoint can load strictly and still be the wrong teacher (trained for another degradation, the BD model
for BI data, a half-trained run, BGR frames). Distilling from it wastes days, so the teacher's PSNR is measured
once, next to bicubic's, and a teacher worse than bicubic is an error unless the user allows it.
Bicubic here is ``F.interpolate(mode='bicubic', align_corners=False)`` (a little below MATLAB's bicubic, so
the check errs towards letting a teacher pass).
"""
from collections import OrderedDict, namedtuple

import numpy as np
import torch
import torch.nn.functional as F

from stdsr.metrics.bicubic import bicubic_upsample
from stdsr.errors import TeacherCheckError
from stdsr.archs.clip_runner import run_clip
from stdsr.config.options import OptionError, check_keys
from stdsr.metrics.vsr_metrics import psnr_y, tensor_to_frames

TEACHER_CHECK_KEYS = {'enabled', 'allow_worse_than_bicubic', 'max_clips', 'crop_border'}
DEFAULTS = {'enabled': True, 'allow_worse_than_bicubic': False, 'max_clips': None, 'crop_border': 0}

TeacherScore = namedtuple('TeacherScore', 'teacher_psnr bicubic_psnr per_clip')
TeacherScore.__doc__ = 'Y-PSNR averaged over frames then clips; per_clip maps clip -> (teacher, bicubic).'


def teacher_check_options(section, where='distill.teacher_check'):
    """The check's settings from an option section (``None`` -> defaults); unknown keys are errors."""
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise OptionError(f"option '{where}' must be a mapping, got {section!r}")
    check_keys(section, where, TEACHER_CHECK_KEYS)
    merged = dict(DEFAULTS, **section)
    for key in ('enabled', 'allow_worse_than_bicubic'):
        if not isinstance(merged[key], bool):
            raise OptionError(f"option '{where}.{key}' must be true or false, got {merged[key]!r}")
    for key in ('max_clips', 'crop_border'):
        value = merged[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise OptionError(f"option '{where}.{key}' must be a non-negative integer, got {value!r}")
    return merged


def bicubic_clip(lq, scale):
    """(N, C, h, w) LR frames -> bicubic (N, C, h*scale, w*scale): the tables' MATLAB bicubic, the same reference
    row the benchmark reports (:func:`stdsr.metrics.bicubic.bicubic_upsample`)."""
    return bicubic_upsample(lq, scale)


def _clip_psnr(sr, gt_frames, crop_border):
    return float(np.mean([psnr_y(s, g, crop_border) for s, g in zip(tensor_to_frames(sr), gt_frames)]))


@torch.no_grad()
def score_teacher(net, dataset, mode, window, scale, device='cpu', max_clips=None, crop_border=0, chunk=8):
    """Teacher and bicubic Y-PSNR on the first ``max_clips`` clips of a validation dataset (items with lq, gt)."""
    count = len(dataset) if max_clips is None else min(len(dataset), max_clips)
    if count == 0:
        raise OptionError('teacher check: the validation dataset has no clips')
    was_training = net.training
    net.eval()
    per_clip = OrderedDict()
    try:
        for index in range(count):
            item = dataset[index]
            if 'gt' not in item:
                raise OptionError(f"teacher check: validation clip '{item.get('clip', index)}' has no GT")
            gt_frames = tensor_to_frames(item['gt'])
            sr = run_clip(net, item['lq'][None].to(device), mode, window, chunk=chunk)[0].float().cpu()
            if tuple(sr.shape) != tuple(item['gt'].shape):
                raise OptionError(f"teacher check: the teacher returns {tuple(sr.shape[-2:])} frames for clip "
                                  f"'{item.get('clip', index)}' whose GT is {tuple(item['gt'].shape[-2:])} (scale?)")
            per_clip[item.get('clip', str(index))] = (_clip_psnr(sr, gt_frames, crop_border),
                                                      _clip_psnr(bicubic_clip(item['lq'], scale), gt_frames,
                                                                 crop_border))
    finally:
        net.train(was_training)
    teacher, bicubic = (float(np.mean([v[i] for v in per_clip.values()])) for i in (0, 1))
    return TeacherScore(teacher, bicubic, per_clip)


def judge(score, allow_worse_than_bicubic=False, dataset_name='validation'):
    """One log line; raises TeacherCheckError (one line) when the teacher is below bicubic and not allowed."""
    line = (f'teacher check on {dataset_name} ({len(score.per_clip)} clip(s)): teacher {score.teacher_psnr:.2f} dB, '
            f'bicubic {score.bicubic_psnr:.2f} dB (Y)')
    if score.teacher_psnr < score.bicubic_psnr:
        if not allow_worse_than_bicubic:
            raise TeacherCheckError(f'{line}: the teacher is worse than bicubic (wrong checkpoint, scale or '
                                    "degradation?); set 'distill.teacher_check.allow_worse_than_bicubic: true' "
                                    '(or --allow-worse-than-bicubic) to distil from it anyway')
        return line + ': WORSE than bicubic, allowed by the options'
    return line
