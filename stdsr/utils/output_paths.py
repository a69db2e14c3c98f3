"""Checks that an output can be written, made before anything is created, renamed or overwritten.

A run that would fail on its last step (an unwritable folder) must fail on its first, with the folder named.
"""
import os
import tempfile
from os import path as osp

from stdsr.errors import UserInputError


def check_writable_dir(folder, what):
    """``folder`` exists as a writable folder or can be created: its nearest existing ancestor is a folder we can
    create files in (probed with a temporary file, removed at once). Nothing is created for ``folder`` itself."""
    folder = osp.abspath(folder)
    if osp.exists(folder) and not osp.isdir(folder):
        raise UserInputError(f'{what} {folder} exists and is not a folder')
    ancestor = folder
    while not osp.exists(ancestor):
        parent = osp.dirname(ancestor)
        if parent == ancestor:
            break
        ancestor = parent
    if not osp.isdir(ancestor):
        raise UserInputError(f'{what} {folder} cannot be created: {ancestor} is not a folder')
    try:
        fd, probe = tempfile.mkstemp(prefix='.stdsr-write-probe-', dir=ancestor)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise UserInputError(f'{what} {folder} cannot be written: no file can be created in {ancestor} '
                             f'({err.strerror or err})') from None


def check_output_file(path, what):
    """The folder of output file ``path`` is writable (or creatable), and ``path`` is not a folder."""
    if osp.isdir(path):
        raise UserInputError(f'{what} {path} is a folder')
    check_writable_dir(osp.dirname(osp.abspath(path)), f'folder of {what}')
