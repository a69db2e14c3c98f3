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


def check_name_fits(path, what, temporary_extra=0):
    """Every name along ``path`` fits the file system's limit (``NAME_MAX``, usually 255 bytes), its last one with
    ``temporary_extra`` more characters (the temporary it is written under): a name too long used to fail only
    when the output was written, after all the work was done."""
    path = osp.abspath(path)
    ancestor = path
    while not osp.exists(ancestor) and osp.dirname(ancestor) != ancestor:
        ancestor = osp.dirname(ancestor)
    try:
        limit = os.pathconf(ancestor, 'PC_NAME_MAX')
    except (OSError, ValueError):
        limit = 255
    parts = [p for p in path.split(os.sep) if p]
    for i, part in enumerate(parts):
        extra = temporary_extra if i == len(parts) - 1 else 0
        size = len(os.fsencode(part)) + extra
        if size > limit:
            with_tmp = f' with the {extra} characters of its temporary name' if extra else ''
            raise UserInputError(f'{what} {path}: the name {part[:40]}... is {size} bytes{with_tmp}, longer than '
                                 f'the {limit} its file system allows; choose a shorter name')


def check_output_file(path, what):
    """The folder of output file ``path`` is writable (or creatable), and ``path`` is not a folder."""
    if osp.isdir(path):
        raise UserInputError(f'{what} {path} is a folder')
    check_writable_dir(osp.dirname(osp.abspath(path)), f'folder of {what}')
