"""Outputs that appear complete or not at all: write under a temporary name next to the target, then rename.

A half-written LMDB, LR tree or report is worse than none: a rerun refuses it as "already exists", or a later
step reads it as if it were whole. ``os.replace`` within one folder is atomic on POSIX. A full disk (or quota) is
reported here, for every writer, as one :class:`DiskFullError` naming the file, once the temporary is removed.
"""
import errno
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from os import path as osp

from stdsr.errors import DiskFullError

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# The same condition where it does not arrive as an OSError: python-lmdb's ``lmdb.Error`` carries the strerror
# text, torch.save's zip writer raises a RuntimeError ("PytorchStreamWriter failed writing file data/0: file
# write failed", "[enforce fail at inline_container.cc] . unexpected pos 1216 vs 1110").
_DISK_FULL_TEXTS = tuple(os.strerror(code) for code in DISK_FULL_ERRNOS)
_TORCH_WRITER_TEXTS = ('PytorchStreamWriter failed writing', 'unexpected pos')


def is_disk_full(err):
    """Whether ``err`` (raised while writing) means the disk or the quota is full."""
    if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
        return True
    texts = _DISK_FULL_TEXTS + (_TORCH_WRITER_TEXTS if isinstance(err, RuntimeError) else ())
    return isinstance(err, Exception) and any(text in str(err) for text in texts)


def raise_if_disk_full(path, err):
    """Re-raise ``err`` as one :class:`DiskFullError` line naming ``path`` when it means a full disk; else return
    (the caller re-raises ``err`` itself)."""
    if isinstance(err, DiskFullError) or not is_disk_full(err):
        return
    cause = (str(err).strip().splitlines() or [type(err).__name__])[0]
    raise DiskFullError(f'cannot write {path}: the disk is full ({cause}); its previous version, if any, is '
                        'untouched and no partial file is left: free some space and run again') from err


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
    with ``replace``, see :func:`publish_folder`), on any error it is removed and ``final`` is untouched."""
    tmp = partial_path(final)
    remove_path(tmp)  # a leftover of an earlier killed run
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException as err:
        remove_path(tmp)
        raise_if_disk_full(final, err)
        raise
    publish_folder(tmp, final, replace)


def publish_folder(tmp, final, replace=False):
    """Make the finished folder ``tmp`` the folder ``final``, as a whole: an existing ``final`` (only with
    ``replace``) is renamed aside, ``tmp`` renamed in, then the old one removed. No file of the old output
    survives into the new one (a merge would keep frames of a longer earlier run), and ``final`` is never half
    old, half new."""
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
    except BaseException as err:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise_if_disk_full(path, err)
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
            temps.append((osp.join(out_dir, f'.{name}.partial'), osp.join(out_dir, name)))
            with open(temps[-1][0], 'wb' if isinstance(data, bytes) else 'w') as f:
                f.write(data)
    except BaseException as err:
        for tmp, _ in temps:
            if osp.lexists(tmp):
                os.remove(tmp)
        raise_if_disk_full(temps[-1][1] if temps else out_dir, err)
        raise
    for tmp, final in temps:
        os.replace(tmp, final)
