"""Outputs that appear complete or not at all: write under a temporary name next to the target, then rename.

A half-written LMDB, LR tree or report is worse than none: a rerun refuses it as "already exists", or a later
step reads it as if it were whole. ``os.replace`` within one folder is atomic on POSIX.
"""
import os
import shutil
from contextlib import contextmanager
from os import path as osp


def partial_path(final):
    """The hidden temporary sibling of ``final`` (same folder, so the rename never crosses file systems)."""
    final = osp.abspath(final)
    return osp.join(osp.dirname(final), f'.{osp.basename(final)}.partial')


def remove_path(path):
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


@contextmanager
def atomic_folder(final, replace=False):
    """Yield a fresh temporary folder; on success it becomes ``final`` (an existing ``final`` is replaced only
    with ``replace``), on any error it is removed and ``final`` is untouched."""
    tmp = partial_path(final)
    remove_path(tmp)  # a leftover of an earlier killed run
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    if osp.lexists(final):
        if not replace:
            remove_path(tmp)
            raise FileExistsError(f'{final} appeared while it was being written')
        old = partial_path(final) + '.old'
        remove_path(old)
        os.replace(final, old)
        os.replace(tmp, final)
        remove_path(old)
    else:
        os.replace(tmp, final)


def merge_folder_into(src, dst):
    """Move every file of tree ``src`` into ``dst`` (replacing same-named files, keeping others), then drop
    ``src``: how an ``--overwrite`` into a non-empty folder publishes a finished temporary tree."""
    for dirpath, _, filenames in os.walk(src):
        rel = osp.relpath(dirpath, src)
        target_dir = osp.normpath(osp.join(dst, rel))
        os.makedirs(target_dir, exist_ok=True)
        for name in filenames:
            os.replace(osp.join(dirpath, name), osp.join(target_dir, name))
    shutil.rmtree(src)


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary sibling and a rename (its folder is created)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = partial_path(path)
    try:
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
