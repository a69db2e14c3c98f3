"""The frozen teacher: built from ``network_t``, strictly loaded, and never trained or saved.

A teacher checkpoint that does not fit ``network_t`` would otherwise distil noise for days, so the
load is strict and a mismatch names the missing, unexpected and mis-shaped keys.
"""
from copy import deepcopy
from os import path as osp

import torch

from basicsr.archs import build_network


class TeacherCheckpointError(ValueError):
    """``path.pretrain_network_t`` does not fit ``network_t`` (or cannot be read)."""


def read_state_dict(load_path, param_key='params'):
    """The network weights in a BasicSR checkpoint (``params``/``params_ema``) or a bare state_dict."""
    try:
        ckpt = torch.load(load_path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise TeacherCheckpointError(f'cannot read checkpoint {load_path}: {err}') from err
    if isinstance(ckpt, dict) and param_key in ckpt and isinstance(ckpt[param_key], dict):
        ckpt = ckpt[param_key]
    elif isinstance(ckpt, dict) and 'params' in ckpt and isinstance(ckpt['params'], dict):
        ckpt = ckpt['params']
    return {(k[7:] if k.startswith('module.') else k): v for k, v in ckpt.items()}


def check_state_dict_fits(net, state, label):
    """Raise TeacherCheckpointError listing missing, unexpected and mis-shaped keys."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}'
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = [f'{label} does not match the network']
        for title, keys in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes)):
            if keys:
                shown = ', '.join(keys[:20]) + (f', ... ({len(keys)} in all)' if len(keys) > 20 else '')
                parts.append(f'{title}: {shown}')
        raise TeacherCheckpointError('; '.join(parts))


def build_frozen_teacher(opt, device):
    """``network_t`` with the weights of ``path.pretrain_network_t``, in eval mode with no gradients."""
    if 'network_t' not in opt:
        raise TeacherCheckpointError("option 'network_t' is required for distillation")
    load_path = (opt.get('path') or {}).get('pretrain_network_t')
    if not load_path:
        raise TeacherCheckpointError("option 'path.pretrain_network_t' is required: the teacher must be pretrained")
    if not osp.isfile(load_path):
        raise TeacherCheckpointError(f"option 'path.pretrain_network_t': no such file {load_path}")
    net_t = build_network(deepcopy(opt['network_t']))
    state = read_state_dict(load_path, opt['path'].get('param_key_t', 'params'))
    check_state_dict_fits(net_t, state, f"path.pretrain_network_t ({load_path}) for network_t "
                          f"({opt['network_t']['type']})")
    net_t.load_state_dict(state, strict=True)
    net_t.to(device).eval()
    net_t.requires_grad_(False)
    return net_t
