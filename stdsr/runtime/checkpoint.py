"""BasicSR checkpoints: the one reader (with a key preference per caller), atomic saves, pruning, and finding the
newest training state to resume from.

Reading: training loads ``params`` (what it saved), evaluation prefers ``params_ema`` (the weights BasicSR
validates); a checkpoint that does not fit its network is reported on one line listing the missing, unexpected
and mis-shaped keys. Writing: a job killed while ``torch.save`` streams to the final name leaves a truncated file that the next
``--auto_resume`` would pick. Writing to a temporary file in the same folder and renaming it makes the
switch atomic on POSIX: the old checkpoint stays valid until the new one is complete.
"""
import os
import re
from copy import deepcopy
from os import path as osp

import torch
from stdsr.errors import CheckpointError, WeightsError
from stdsr.utils.atomic_files import torch_save_atomic


# ---------------------------------------------------------------------------------------------------- reading
TRAIN_KEYS = ('params', )
EVAL_KEYS = ('params_ema', 'params')


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


def build_with_weights(net_opt, ckpt_path, prefer, param_key=None, what='checkpoint', label=None, load=True):
    """The one build-and-load path (the frozen teacher, the pretrained-network preflight, evaluation models):
    read ``ckpt_path`` (keys in ``prefer`` order, or ``param_key``), build ``net_opt`` with BasicSR's registry,
    check the weights fit and load them strictly (``load=False`` checks only). Returns ``(net, key)``. ``label``
    names the pair in a misfit message: a string, or a function of the key used.

    Errors of reading or fitting are :class:`WeightsError`; a constructor's own error propagates, so the caller
    can say which option built it."""
    from basicsr.archs import build_network  # imported here: reading a checkpoint needs no registry

    state, key = read_weights(ckpt_path, param_key, prefer=prefer, what=what)
    net = build_network(deepcopy(dict(net_opt)))
    if callable(label):
        label = label(key)
    check_state_dict_fits(net, state, label or f'checkpoint {ckpt_path} ({key})')
    if load:
        net.load_state_dict(state, strict=True)
    return net, key


# ---------------------------------------------------------------------------------------------------- writing
def atomic_torch_save(obj, path):
    """``torch.save`` to ``path`` atomically; a failure is a :class:`CheckpointError` naming the file."""
    try:
        torch_save_atomic(obj, path)
    except Exception as err:
        raise CheckpointError(f'could not save {path}: {err}; the previous checkpoint is untouched') from err


_STATE_RE = re.compile(r'^(?P<iter>\d+)\.state$')


def latest_training_state(states_dir):
    """Path of the highest-iteration ``<iter>.state`` in ``states_dir``, or None."""
    if not osp.isdir(states_dir):
        return None
    iters = [int(m.group('iter')) for m in map(_STATE_RE.match, os.listdir(states_dir)) if m]
    return osp.join(states_dir, f'{max(iters)}.state') if iters else None


def load_training_state(path, device='cpu'):
    """Load a training state written by this project (optimizer and scheduler objects need full unpickling)."""
    if not osp.isfile(path):
        raise CheckpointError(f'resume state not found: {path}')
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as err:
        raise CheckpointError(f'could not read resume state {path}: {err}') from err


_NET_RE = re.compile(r'^.+_(?P<iter>\d+)\.pth$')


def _checkpoint_iter(name):
    """Iteration of a ``<net>_<iter>.pth`` or ``<iter>.state`` file name, else None (e.g. ``*_latest.pth``)."""
    m = _STATE_RE.match(name) or _NET_RE.match(name)
    return int(m.group('iter')) if m else None


def prune_checkpoints(models_dir, states_dir, keep):
    """Delete all but the newest ``keep`` iterations of ``<net>_<iter>.pth`` and ``<iter>.state``.

    Called only after a save succeeded, so the newest checkpoint always exists; ``*_latest.pth`` stays.
    """
    files = [(folder, name, _checkpoint_iter(name)) for folder in (models_dir, states_dir) if osp.isdir(folder)
             for name in os.listdir(folder)]
    iters = sorted({it for _, _, it in files if it is not None})
    doomed = set(iters[:-keep]) if keep > 0 else set()
    for folder, name, it in files:
        if it in doomed:
            os.remove(osp.join(folder, name))
    return sorted(doomed)
