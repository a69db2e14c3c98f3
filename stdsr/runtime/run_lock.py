"""One process per run folder: an exclusive lock held for the life of a run, taken before anything is archived.

Without it a second run of the same ``name`` renames the live run's folder to ``<name>_archived_*`` and both
then write checkpoints into one ``experiments/<name>``. The lock is ``fcntl.flock`` on a hidden sibling file
``.<folder>.lock`` (a sibling, because BasicSR's ``mkdir_and_rename`` moves the folder itself away). The kernel
drops a flock when its process dies, however it dies, so a lock left by a killed run is never mistaken for a live
one; the file holds the owner's pid, host and start time, for the message only. It is removed on release.
"""
import fcntl
import os
import socket
import time
from os import path as osp

from stdsr.errors import RunLockedError  # noqa: F401  (raised here; imported from here too)


def lock_path(folder):
    folder = osp.abspath(folder)
    return osp.join(osp.dirname(folder), f'.{osp.basename(folder)}.lock')


def _owner(path):
    try:
        with open(path) as f:
            return f.read().strip() or 'an unknown process'
    except OSError:
        return 'an unknown process'


class RunLock:
    """``with RunLock(folder, what):`` or ``lock = RunLock(...).acquire(); ...; lock.release()``."""

    def __init__(self, folder, what='run folder'):
        self.folder = osp.abspath(folder)
        self.what = what
        self.path = lock_path(self.folder)
        self.fd = None

    def acquire(self):
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLockedError(f'{self.what} {self.folder} is in use by {_owner(self.path)}; wait for it to '
                                     f'finish or choose another name') from None
            try:  # the previous holder may have removed the file between our open and our lock: retry on the new one
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        stamp = time.strftime('%Y-%m-%d %H:%M:%S')
        os.ftruncate(fd, 0)
        os.write(fd, f'pid {os.getpid()} on {socket.gethostname()} since {stamp}\n'.encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is None:
            return
        try:
            os.remove(self.path)  # while still locked: a waiting process then retries on a fresh file
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
