"""Checkpoint files that are never half-written, and finding the newest one to resume from.

A job killed while ``torch.save`` streams to the final name leaves a truncated file that the next
``--auto_resume`` would pick. Writing to a temporary file in the same folder and renaming it makes the
switch atomic on POSIX: the old checkpoint stays valid until the new one is complete.
"""
import os
import re
import tempfile
from os import path as osp

import torch


class CheckpointError(OSError):
    """A checkpoint could not be written or read; the message names the file and the cause."""


def atomic_torch_save(obj, path):
    """``torch.save`` to ``path`` through a temporary file and ``os.replace``."""
    folder = osp.dirname(osp.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as err:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        if isinstance(err, Exception):
            raise CheckpointError(f'could not save {path}: {err}; the previous checkpoint is untouched') from err
        raise


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
