"""Distillation weights that mean the same for every pair of networks: a term's share of the pixel loss.

Raw distillation losses differ by orders of magnitude between pairs (a VESPCN pair's L_SD is ~100x an EDVR pair's),
so one ``loss_weight`` cannot serve both. ``loss_share: s`` instead fixes lambda = s * mean(pixel) / mean(raw term),
measured over ``calibration_iters`` steps and then held constant (the default: the term fades as the student
matches the teacher). The window may open after ``start_iter`` iterations (e.g. after the learning-rate warm-up);
before it lambda is 0. The first measured step only measures (lambda = 0); later calibration steps use the ratio of
the steps so far. With ``track`` lambda is re-measured over every following window of ``calibration_iters`` steps
and used for the next one (the weight is detached, so a term held at share s is a loss on log(raw term): it keeps
pulling as the raw term falls). docs/method.md has both measured on the validation split. The sums are
rank-averaged, so every rank holds the same lambda, and they are buffers, so a resumed run keeps its lambda.
"""
import torch
from torch import nn as nn

__all__ = ['ShareWeight']


class ShareWeight(nn.Module):
    """The weight that makes a distillation term ``share`` times the pixel loss (see the module docstring).

    Args:
        share (float): Target ratio of the weighted term to the pixel loss during calibration, > 0.
        calibration_iters (int): Steps measured before lambda is fixed, >= 1.
        start_iter (int): Iterations before the calibration window opens (lambda is 0 until then), >= 0.
        track (bool): Re-measure lambda over every later window of ``calibration_iters`` steps.
    """

    def __init__(self, share, calibration_iters, start_iter=0, track=False):
        super().__init__()
        if not share > 0:
            raise ValueError(f'loss_share must be positive, got {share}')
        if int(calibration_iters) != calibration_iters or calibration_iters < 1:
            raise ValueError(f'balance calibration_iters must be a positive integer, got {calibration_iters}')
        if int(start_iter) != start_iter or start_iter < 0:
            raise ValueError(f'balance start_iter must be a non-negative integer, got {start_iter}')
        self.share = float(share)
        self.calibration_iters = int(calibration_iters)
        self.start_iter = int(start_iter)
        self.track = bool(track)
        self.register_buffer('pixel_sum', torch.zeros((), dtype=torch.float64))
        self.register_buffer('raw_sum', torch.zeros((), dtype=torch.float64))
        self.register_buffer('count', torch.zeros((), dtype=torch.long))
        self.register_buffer('fixed_weight', torch.zeros((), dtype=torch.float64))
        self.register_buffer('windows', torch.zeros((), dtype=torch.long))  # completed calibration windows
        self._refresh()

    def _refresh(self):
        """Cache lambda and the calibration state as Python numbers: read every step, they must not sync a GPU."""
        self.steps_seen = int(self.count)
        self.windows_done = int(self.windows)
        if self.windows_done:
            self.weight = float(self.fixed_weight)
        elif self.steps_seen == 0 or float(self.raw_sum) <= 0:
            self.weight = 0.0
        else:
            self.weight = self.share * float(self.pixel_sum) / float(self.raw_sum)

    @property
    def calibrating(self):
        """Whether the first window is still being measured (lambda not yet fixed)."""
        return self.windows_done == 0

    def observe(self, pixel_loss, raw_loss, current_iter):
        """Add iteration ``current_iter``'s rank-averaged, unweighted losses (floats) once the window is open and
        while measuring (always, with ``track``); ignored before and, without ``track``, after the first window."""
        if current_iter <= self.start_iter or not (self.calibrating or self.track):
            return
        self.pixel_sum += float(pixel_loss)
        self.raw_sum += float(raw_loss)
        self.count += 1
        if int(self.count) >= self.calibration_iters:
            raw = float(self.raw_sum)
            self.fixed_weight.fill_(self.share * float(self.pixel_sum) / raw if raw > 0 else 0.0)
            self.windows += 1
            if self.track:
                self.pixel_sum.zero_()
                self.raw_sum.zero_()
                self.count.zero_()
        self._refresh()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + 'windows' not in state_dict and prefix + 'count' in state_dict:  # a state saved before tracking
            state_dict[prefix + 'windows'] = (state_dict[prefix + 'count'] >= self.calibration_iters).long()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh()

    def extra_repr(self):
        return (f'share={self.share}, calibration_iters={self.calibration_iters}, start_iter={self.start_iter}, '
                f'track={self.track}')
