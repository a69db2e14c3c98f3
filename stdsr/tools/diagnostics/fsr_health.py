"""Is a student's F^SR alive? Per checkpoint of a run: how many F^SR units fire, and how far SR is from bicubic.

The comparison harness flags a run that ends on its bicubic plateau; this says why. Twice a residual student's
plateau was dead features: every unit of the ReLU'd map that ``conv_last`` reads was below zero, so no gradient
reached them again (FastDVDnet-SR and VSRNet from their old inits, FastDVDnet-SR under Overhaul; docs/results.md).
Reading the checkpoints a run saved, in iteration order, shows whether and when that happened.
"""
import os
import re
from dataclasses import asdict, dataclass
from os import path as osp

import torch

from stdsr.errors import VisualizationError
from stdsr.metrics.bicubic import bicubic_upsample
from stdsr.tools.figures.attention import sr_and_features

CHECKPOINT_RE = re.compile(r'^net_g_(\d+|latest)\.pth$')


@dataclass
class FsrHealth:
    """What one checkpoint's F^SR looks like on the chosen frames."""

    checkpoint: str
    iteration: int  # None when the file name carries none (net_g_latest.pth, any other name)
    positive: float  # share of F^SR values > 0 (after a ReLU: the units that pass a gradient)
    dead_channels: int  # channels with no value > 0 anywhere in the frames
    channels: int
    std: float  # spread of the F^SR values (a collapsed map has almost none)
    off_bicubic: float  # mean |SR - bicubic| per pixel, [0, 1] scale (0: the net outputs bicubic)

    def as_dict(self):
        return asdict(self)


def run_checkpoints(models_dir):
    """``net_g_<iter>.pth`` of a training run's ``models`` folder in iteration order, ``net_g_latest.pth`` last."""
    if not osp.isdir(models_dir):
        raise VisualizationError(f'--models {models_dir}: no such folder (a run\'s experiments/<name>/models)')
    found = [name for name in os.listdir(models_dir) if CHECKPOINT_RE.match(name)]
    if not found:
        raise VisualizationError(f'--models {models_dir}: no net_g_<iter>.pth or net_g_latest.pth in it')
    found.sort(key=lambda name: (iteration_of(name) is None, iteration_of(name) or 0))
    return [osp.join(models_dir, name) for name in found]


def iteration_of(ckpt_path):
    match = CHECKPOINT_RE.match(osp.basename(ckpt_path))
    return int(match.group(1)) if match and match.group(1) != 'latest' else None


@torch.no_grad()
def measure(model, checkpoint, lq, indices, layer=None):
    """:class:`FsrHealth` of ``model`` (a LoadedModel with the weights of ``checkpoint``) on frames ``indices`` of
    ``lq`` (1, N, 3, h, w) in [0, 1].

    ``layer`` defaults to the model's F^SR tap (``conv_last:input``); give a pre-activation layer (``conv_hr``) to
    see where it sits below zero.
    """
    sr, feats = sr_and_features(model, lq, indices, layer or model.fsr_tap)
    base = bicubic_upsample(lq[0, indices].float(), sr.shape[-1] // lq.shape[-1], impl='torch')
    fires = feats > 0
    return FsrHealth(checkpoint=checkpoint, iteration=iteration_of(checkpoint),
                     positive=fires.float().mean().item(),
                     dead_channels=int((~fires.transpose(0, 1).flatten(1).any(1)).sum()), channels=feats.shape[1],
                     std=feats.std().item(), off_bicubic=(sr.clamp(0, 1) - base).abs().mean().item())


def markdown_table(rows, layer):
    lines = [f'F^SR tap: `{layer}`', '',
             '| checkpoint | iteration | units > 0 | dead channels | std | mean abs(SR - bicubic) |',
             '|---|--:|--:|--:|--:|--:|']
    for r in rows:
        lines.append(f'| {osp.basename(r.checkpoint)} | {"—" if r.iteration is None else r.iteration} | '
                     f'{100 * r.positive:.2f} % | {r.dead_channels} / {r.channels} | {r.std:.4f} | '
                     f'{r.off_bicubic:.4f} |')
    return '\n'.join(lines) + '\n'
