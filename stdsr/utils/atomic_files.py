"""Outputs that appear complete or not at all: write under a temporary name next to the target, then rename.

A half-written LMDB, LR tree or report is worse than none: a rerun refuses it as "already exists", or a later
step reads it as if it were whole. ``os.replace`` within one folder is atomic on POSIX.
"""
import io
import json
import os
import shutil
import tempfile
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


def _umask():
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path, mode='w'):
    """Yield a file object open on a unique temporary sibling of ``path``; on success it is flushed, fsynced,
    given the permissions a plain ``open`` would give (``0666 & ~umask``: ``mkstemp`` makes files 0600) and
    renamed to ``path``; on any error it is removed and ``path`` is untouched. Its folder is created."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, 'w') as f:
        f.write(text)


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    with atomic_file(path, 'wb') as f:
        f.write(data)


def write_json_atomic(path, obj):
    """``obj`` as indented, key-sorted JSON, written atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def save_figure_atomic(fig, path, **savefig_kwargs):
    """A matplotlib figure saved atomically (rendered to memory first, so a failed render writes nothing)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=osp.splitext(path)[1][1:] or 'png', **savefig_kwargs)
    write_bytes_atomic(path, buf.getvalue())


def torch_save_atomic(obj, path):
    """``torch.save`` to ``path`` atomically: a job killed mid-save leaves the previous file valid."""
    import torch  # imported here: the rest of this module serves torch-free tools too

    with atomic_file(path, 'wb') as f:
        torch.save(obj, f)


def write_files_together(files, out_dir):
    """Write ``{name: str|bytes}`` under temporary names in ``out_dir``, then rename them all: a failure leaves the
    earlier reports (or none), never a mix of old and new or a truncated file."""
    os.makedirs(out_dir, exist_ok=True)
    temps = []
    try:
        for name, data in files.items():
            tmp = osp.join(out_dir, f'.{name}.partial')
            with open(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
                f.write(data)
            temps.append((tmp, osp.join(out_dir, name)))
    except BaseException:
        for tmp, _ in temps:
            os.remove(tmp)
        raise
    for tmp, final in temps:
        os.replace(tmp, final)
