"""Build a trained VSR network for evaluation scripts: from an option file or a checkpoint + architecture options.

Benchmark, inference and visualisation all need the same thing: the student (or teacher) network with its
trained weights, in eval mode, with its temporal design (sliding window or recurrent) and its upscaling factor.
Weights come from ``params_ema`` when the checkpoint has it (the EMA weights are the ones BasicSR evaluates),
else ``params``, else the file is taken as a bare state_dict; the load is strict, and a mismatch lists the keys.
A ``bicubic`` pseudo-model gives the interpolation baseline every VSR table starts with.
"""
import argparse
import os
from dataclasses import dataclass, field
from os import path as osp

import torch
from torch import nn as nn

from stdsr.errors import ModelLoadError
from stdsr.metrics.bicubic import BICUBIC_IMPLS, bicubic_upsample
from stdsr.archs.clip_runner import run_clip, temporal_mode
from stdsr.distill.feature_hooks import fsr_tap
from stdsr.config.options import OptionError, load_yaml, validate_options
from stdsr.runtime.checkpoint import (EVAL_KEYS, WeightsError, build_with_weights,  # noqa: F401
                                      check_state_dict_fits, read_weights)
from stdsr.runtime.device import resolve_device  # noqa: F401  (re-exported)
from stdsr.utils.timing import synchronize  # noqa: F401  (re-exported)
from stdsr.utils.modules import count_parameters

PROBE_SIZE = 64  # LR side of the scale probe: small, yet enough for SpyNet-based recurrent networks


@dataclass
class LoadedModel:
    """A network ready for inference, with what the scripts report about it."""

    label: str
    net: nn.Module
    mode: str  # 'sliding' | 'recurrent'
    window: int = None  # sliding-window length, None for recurrent
    device: torch.device = torch.device('cpu')
    source: str = ''  # human-readable origin (option file / checkpoint and parameter key)
    declared_scale: int = None  # 'scale' of the option file or network options, when there is one
    net_opt: dict = field(default_factory=dict)
    _probed_scale: int = None

    @property
    def num_params(self):
        return count_parameters(self.net)

    @property
    def is_bicubic(self):
        return isinstance(self.net, BicubicUpsampler)

    @property
    def fsr_tap(self):
        """F^SR tap: the input of the network's output conv (``stdsr.distill.feature_hooks.fsr_tap``)."""
        return fsr_tap(self.net)

    @torch.no_grad()
    def infer(self, lq, chunk=None):
        """SR of every frame of ``lq`` (B, N, 3, h, w) in [0, 1] -> (B, N, 3, H, W) on the model's device."""
        return run_clip(self.net, lq.to(self.device), self.mode, self.window, chunk=chunk)

    @property
    def scale(self):
        """Upscaling factor: declared in the options, else measured once on a small random clip."""
        if self.declared_scale is not None:
            return self.declared_scale
        if self._probed_scale is None:
            num = self.window or 2
            lq = torch.rand(1, num, 3, PROBE_SIZE, PROBE_SIZE, device=self.device)
            out = self.infer(lq)
            ratio = out.shape[-1] / PROBE_SIZE
            if ratio != int(ratio) or out.shape[-2] != PROBE_SIZE * ratio:
                raise ModelLoadError(f"model '{self.label}' ({self.source}) maps {PROBE_SIZE}x{PROBE_SIZE} to "
                                     f'{out.shape[-2]}x{out.shape[-1]}: not an integer upscaling')
            self._probed_scale = int(ratio)
        return self._probed_scale


class BicubicUpsampler(nn.Module):
    """The interpolation baseline as a frame-wise "network": (B, N, C, h, w) -> (B, N, C, h*s, w*s), by
    :func:`stdsr.metrics.bicubic.bicubic_upsample` (``impl`` 'matlab', the tables' convention, or 'torch')."""

    def __init__(self, scale, impl='matlab'):
        super().__init__()
        if impl not in BICUBIC_IMPLS:
            raise ModelLoadError(f"bicubic implementation must be one of {BICUBIC_IMPLS}, got '{impl}'")
        self.scale = int(scale)
        self.impl = impl

    def forward(self, x):
        b, n, c, h, w = x.shape
        out = bicubic_upsample(x.reshape(b * n, c, h, w), self.scale, self.impl)
        return out.reshape(b, n, c, h * self.scale, w * self.scale)


def bicubic_model(scale, impl='matlab', device='cpu', label='bicubic'):
    return LoadedModel(label=label, net=BicubicUpsampler(scale, impl).to(device), mode='recurrent',
                       device=torch.device(device), source=f'{impl} bicubic x{scale}', declared_scale=int(scale))


# ----------------------------------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------------------------------
def temporal_design(net_opt, temporal=None, where=''):
    """('sliding', window) or ('recurrent', None) of a network section and its ``temporal`` declaration."""
    opt = {'network_g': net_opt, 'temporal': {'network_g': temporal} if temporal else {}}
    try:
        return temporal_mode(opt, 'network_g')
    except (KeyError, ValueError) as err:
        raise ModelLoadError(f'{where}: {err}') from None


def read_arch_options(arch_opt_path):
    """(network section, its ``temporal`` mode, ``scale``) of a whole option file (its ``network_g``) or of a
    bare network section (``type: EDVR`` plus its arguments)."""
    arch = load_yaml(arch_opt_path)
    if 'network_g' in arch:
        return arch['network_g'], (arch.get('temporal') or {}).get('network_g'), arch.get('scale')
    if 'type' in arch:
        return arch, None, None
    raise ModelLoadError(f"{arch_opt_path}: expected a 'network_g' section or a network section with a 'type' key")


def build_model(net_opt, ckpt_path, label, device='cpu', temporal=None, declared_scale=None, param_key=None,
                source=''):
    """Network from ``net_opt`` ({type, **kwargs}) with the weights of ``ckpt_path``, in eval mode on ``device``."""
    device = torch.device(device)
    try:  # evaluation prefers the EMA weights, as BasicSR validates them
        net, key = build_with_weights(net_opt, ckpt_path, prefer=EVAL_KEYS, param_key=param_key)
    except WeightsError as err:
        raise ModelLoadError(f"model '{label}' ({net_opt['type']}): {err}") from None
    except Exception as err:
        raise ModelLoadError(f"model '{label}': cannot build network {dict(net_opt)} ({source}): {err}") from err
    net.eval().requires_grad_(False).to(device)
    mode, window = temporal_design(net_opt, temporal, f"model '{label}'")
    if declared_scale is None and isinstance(net_opt.get('scale'), int):
        declared_scale = net_opt['scale']
    return LoadedModel(label=label, net=net, mode=mode, window=window, device=device,
                       source=f'{source}{", " if source else ""}{ckpt_path} [{key}]', declared_scale=declared_scale,
                       net_opt=dict(net_opt))


def default_checkpoint(opt, opt_path, root=None):
    """The weights an option file points at: ``path.pretrain_network_g``, else the run's ``net_g_latest.pth``
    (``path.experiments_root`` or ``<root>/experiments/<name>``, as the training entry point writes it)."""
    paths = opt.get('path') or {}
    if paths.get('pretrain_network_g'):
        ckpt = osp.expanduser(paths['pretrain_network_g'])
        if not osp.isfile(ckpt):
            raise ModelLoadError(f"{opt_path}: option 'path.pretrain_network_g' names a missing checkpoint {ckpt}")
        return ckpt
    exp_root = paths.get('experiments_root') or osp.join(root or os.getcwd(), 'experiments', str(opt['name']))
    ckpt = osp.join(osp.expanduser(exp_root), 'models', 'net_g_latest.pth')
    if not osp.isfile(ckpt):
        raise ModelLoadError(f"{opt_path}: no checkpoint: 'path.pretrain_network_g' is not set and the run's "
                             f'{ckpt} does not exist (train it first, or pass --ckpt FILE.pth --arch-opt {opt_path})')
    return ckpt


def model_from_opt(opt_path, label=None, device='cpu', ckpt=None, root=None):
    """``network_g`` of a train/test option file with its checkpoint (see :func:`default_checkpoint`)."""
    opt = load_yaml(opt_path)
    try:
        validate_options(opt, is_train=False, source=opt_path)
    except OptionError as err:
        raise ModelLoadError(str(err)) from None
    if 'network_g' not in opt:
        raise ModelLoadError(f"{opt_path}: no 'network_g' section")
    ckpt = ckpt or default_checkpoint(opt, opt_path, root)
    param_key = (opt.get('path') or {}).get('param_key_g')
    return build_model(opt['network_g'], ckpt, label or str(opt['name']), device,
                       temporal=(opt.get('temporal') or {}).get('network_g'), declared_scale=opt.get('scale'),
                       param_key=param_key, source=f'opt {opt_path}')


def model_from_ckpt(ckpt_path, arch_opt_path, label=None, device='cpu'):
    """A checkpoint with the network described by ``arch_opt_path``: a whole option file (its ``network_g``,
    ``temporal`` and ``scale`` are used) or just the network section (``type: EDVR`` plus its arguments)."""
    net_opt, temporal, scale = read_arch_options(arch_opt_path)
    label = label or osp.splitext(osp.basename(ckpt_path))[0]
    return build_model(net_opt, ckpt_path, label, device, temporal=temporal, declared_scale=scale,
                       source=f'arch {arch_opt_path}')


# ----------------------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------------------
def split_label(spec):
    """``LABEL=PATH`` -> (LABEL, PATH); a bare PATH (or an existing file whose name holds '=') -> (None, PATH)."""
    if '=' in spec and not osp.isfile(spec):
        label, path = spec.split('=', 1)
        if label and path:
            return label, path
    return None, spec


class _AppendModelSpec(argparse.Action):
    """Keeps ``--opt`` and ``--ckpt`` in one ordered list, so figures and tables follow the command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        specs = list(getattr(namespace, self.dest, None) or [])
        specs.append((self.const, values))
        setattr(namespace, self.dest, specs)


def add_model_arguments(parser, required=True):
    group = parser.add_argument_group('models (in command-line order; LABEL= is optional)')
    group.add_argument('--opt', dest='model_specs', action=_AppendModelSpec, const='opt', metavar='[LABEL=]FILE.yml',
                       help='train/test option file: its network_g, with path.pretrain_network_g or the run\'s '
                       'experiments/<name>/models/net_g_latest.pth')
    group.add_argument('--ckpt', dest='model_specs', action=_AppendModelSpec, const='ckpt',
                       metavar='[LABEL=]FILE.pth', help='checkpoint (params_ema if present, else params)')
    group.add_argument('--arch-opt', action='append', default=[], metavar='FILE.yml',
                       help='network options for --ckpt: one for all checkpoints, or one per --ckpt in order')
    parser.set_defaults(model_specs=[])
    parser.set_defaults(_models_required=required)
    return group


def models_from_args(args, device, root=None):
    """Load every ``--opt`` / ``--ckpt`` model of ``args`` in command-line order; labels must be unique."""
    specs = args.model_specs or []
    ckpts = [value for kind, value in specs if kind == 'ckpt']
    if ckpts and not args.arch_opt:
        raise ModelLoadError('--ckpt needs --arch-opt FILE.yml describing the network')
    if args.arch_opt and len(args.arch_opt) not in (1, len(ckpts)):
        raise ModelLoadError(f'give one --arch-opt for all checkpoints or one per --ckpt; got {len(args.arch_opt)} '
                             f'for {len(ckpts)} checkpoint(s)')
    if getattr(args, '_models_required', True) and not specs:
        raise ModelLoadError('no model given: pass --opt FILE.yml or --ckpt FILE.pth --arch-opt FILE.yml')
    models, ckpt_index = [], 0
    for kind, value in specs:
        label, path = split_label(value)
        if kind == 'opt':
            models.append(model_from_opt(path, label, device, root=root))
        else:
            arch = args.arch_opt[0] if len(args.arch_opt) == 1 else args.arch_opt[ckpt_index]
            ckpt_index += 1
            models.append(model_from_ckpt(path, arch, label, device))
    labels = [m.label for m in models]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ModelLoadError(f'model labels must be unique, got {duplicates} more than once; name them LABEL=FILE')
    return models

