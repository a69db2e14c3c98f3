"""The one reader of BasicSR checkpoints, for teacher loading, ``stdsr.test``, the benchmark and inference.

Two readers with different key preferences and error forms disagreed on the same file; here there is one
function, and the caller says which weights it prefers: training loads ``params`` (what it saved), evaluation
prefers ``params_ema`` (the weights BasicSR validates). A checkpoint that does not fit its network is reported
on one line listing the missing, unexpected and mis-shaped keys.
"""
from os import path as osp

import torch

TRAIN_KEYS = ('params', )
EVAL_KEYS = ('params_ema', 'params')


class WeightsError(ValueError):
    """A checkpoint cannot be read, lacks the requested weights, or does not fit its network."""


def read_weights(ckpt_path, param_key=None, prefer=EVAL_KEYS, what='checkpoint'):
    """``(state_dict, key used)`` of a BasicSR checkpoint or a bare state_dict; ``module.`` prefixes dropped.

    ``param_key`` (an option such as ``path.param_key_g``) must exist when given; else the first of ``prefer``
    present is used, else the file itself when it is a state_dict of tensors (key ``'state_dict'``).
    """
    if not osp.isfile(ckpt_path):
        raise WeightsError(f'{what} not found: {ckpt_path}')
    try:
        ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    except Exception as err:  # truncated file, pickle with objects, not a torch file at all
        raise WeightsError(f'cannot read {what} {ckpt_path}: {str(err).splitlines()[0]}') from err
    if not isinstance(ckpt, dict):
        raise WeightsError(f'{what} {ckpt_path} holds a {type(ckpt).__name__}, not a state_dict')
    if param_key is not None:
        if not isinstance(ckpt.get(param_key), dict):
            raise WeightsError(f"{what} {ckpt_path} has no '{param_key}' weights (keys: {sorted(ckpt)[:10]})")
        key = param_key
    else:
        key = next((k for k in prefer if isinstance(ckpt.get(k), dict)), None)
    state = ckpt[key] if key is not None else ckpt
    if not state or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(f"{what} {ckpt_path} is neither a BasicSR checkpoint ({'/'.join(prefer)}) nor a "
                           'state_dict of tensors')
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}, (key or 'state_dict')


def check_state_dict_fits(net, state, label):
    """Raise WeightsError listing missing, unexpected and mis-shaped keys of ``state`` for ``net``."""
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
        raise WeightsError('; '.join(parts))


def load_checked(net, ckpt_path, param_key=None, prefer=EVAL_KEYS, label=None):
    """Read ``ckpt_path``, check it fits ``net`` and load it strictly; returns the key used."""
    state, key = read_weights(ckpt_path, param_key, prefer)
    check_state_dict_fits(net, state, label or f'checkpoint {ckpt_path} ({key})')
    net.load_state_dict(state, strict=True)
    return key
