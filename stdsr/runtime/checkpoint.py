"""BasicSR checkpoints: the one reader (with a key preference per caller), atomic saves, pruning, and finding the
newest training state to resume from.

Reading: training loads ``params`` (what it saved), evaluation prefers ``params_ema`` (the weights BasicSR
validates); a checkpoint that does not fit its network is reported on one line listing the missing, unexpected and
mis-shaped keys (the first few of each and the count of the rest). Writing: a job killed while ``torch.save``
streams to the final name leaves a truncated file that the next ``--auto_resume`` would pick. Writing to a
temporary file in the same folder and renaming it makes the switch atomic on POSIX: the old checkpoint stays valid
until the new one is complete.
"""
import os
import pickletools
import re
import zipfile
from copy import deepcopy
from os import path as osp

import torch
from stdsr.errors import CheckpointError, DiskFullError, WeightsError
from stdsr.utils.atomic_files import torch_save_atomic
from stdsr.utils.cli import first_few


# ---------------------------------------------------------------------------------------------------- reading
TRAIN_KEYS = ('params', )
EVAL_KEYS = ('params_ema', 'params')


def pretrain_keys(param_key):
    """Key order for a ``path.pretrain_network_*`` file with its ``path.param_key_*``: that key, else ``params``
    (BasicSR's loader falls back the same way); no key: ``params``."""
    return TRAIN_KEYS if param_key in (None, 'params') else (param_key, 'params')


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
        raise WeightsError(f'{what} {ckpt_path} {describe_unreadable(ckpt_path, err)}') from err
    if not isinstance(ckpt, dict):
        raise WeightsError(f'{what} {ckpt_path} holds a {type(ckpt).__name__}, not a state_dict')
    if TRAINING_STATE_KEYS <= set(ckpt):
        raise WeightsError(f'{what} {ckpt_path} {IS_TRAINING_STATE}')
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


TRAINING_STATE_KEYS = frozenset({'iter', 'optimizers', 'schedulers'})
IS_TRAINING_STATE = ('is a training state (a .state file: iter, optimizers, schedulers), not network weights; give '
                     'the models/net_*_<iter>.pth of that iteration')


def describe_unreadable(path, err):
    """What ``path`` is, when ``torch.load`` refused it: torch's own words (``invalid load key``, a bare
    ``KeyError: '101'`` for a text file, three paragraphs on ``weights_only``) do not say. Read without
    unpickling anything."""
    if zipfile.is_zipfile(path):
        if TRAINING_STATE_KEYS <= _pickled_strings(path):
            return IS_TRAINING_STATE
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(err))
        if found:
            return f'holds Python objects ({found.group(1)}), not only network weights'
        return f'is a damaged PyTorch checkpoint ({(str(err).splitlines() or [type(err).__name__])[0]})'
    with open(path, 'rb') as f:
        head = f.read(4096)
    if not head:
        return 'is empty (0 bytes), not a PyTorch checkpoint'
    if head.startswith(b'PK'):
        return 'is a truncated PyTorch checkpoint (its zip archive is incomplete: an interrupted save or copy?)'
    if b'\0' not in head:
        try:
            head.decode('utf-8')
            return 'is a text file, not a PyTorch checkpoint'
        except UnicodeDecodeError as bad:
            if bad.start >= len(head) - 3:  # a character cut by the 4096-byte read
                return 'is a text file, not a PyTorch checkpoint'
    return 'is not a PyTorch checkpoint (no torch.save archive)'


def _pickled_strings(zip_path):
    """The strings of the pickle inside a ``torch.save`` archive (its dict keys among them), without loading it."""
    with zipfile.ZipFile(zip_path) as archive:
        name = next((n for n in archive.namelist() if n.endswith('/data.pkl') or n == 'data.pkl'), None)
        if name is None:
            return set()
        data = archive.read(name)
    strings = set()
    try:
        for _, arg, _ in pickletools.genops(data):
            if isinstance(arg, str):
                strings.add(arg)
    except Exception:  # a damaged pickle: the strings read so far
        pass
    return strings


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
                parts.append(f'{title}: {first_few(keys)}')
        raise WeightsError('; '.join(parts))


def load_weights(net, state, strict, label):
    """Load a ``state`` already read into ``net``, so a checkpoint is read once (BasicSR's ``load_network`` reads
    the file again). Strict: the fit is checked first and a misfit is one :class:`WeightsError` line. Not strict
    (``path.strict_load_*: false``, for fine-tuning a changed network): the keys that fit by name and shape are
    loaded, as BasicSR does; the network keys left at their init are returned, for the log."""
    if strict:
        check_state_dict_fits(net, state, label)
        net.load_state_dict(state, strict=True)
        return []
    own = net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    net.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))


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
    label = label or f'checkpoint {ckpt_path} ({key})'
    if load:
        load_weights(net, state, True, label)
    else:
        check_state_dict_fits(net, state, label)
    return net, key


# ---------------------------------------------------------------------------------------------------- writing
def atomic_torch_save(obj, path):
    """``torch.save`` to ``path`` atomically; a failure is a :class:`CheckpointError` naming the file (a full disk
    the :class:`DiskFullError` of the atomic writer, which says so)."""
    try:
        torch_save_atomic(obj, path)
    except DiskFullError:
        raise
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
