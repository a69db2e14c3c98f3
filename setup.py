"""Packaging: setup.cfg declares the project; this file adds one build step, the start-up hook that lets a plain
``import basicsr`` work in the environment (``stdsr_compat_functional_tensor.pth``, see that module).

Python reads ``.pth`` files only in site-packages itself, so the file goes to the root of the wheel: for a normal
build through ``build_lib`` (which becomes the wheel's root), for ``pip install -e .`` into the folder setuptools
packs into the editable wheel (its ``install_lib``; the editable wheel leaves ``build_lib`` out).
"""
import os

from setuptools import Command, setup
from setuptools.command.build import build

PTH = 'stdsr_compat_functional_tensor.pth'


class BuildPth(Command):
    """Copy the start-up ``.pth`` file to the root of the wheel."""

    description = f'put {PTH} at the root of the wheel (site-packages)'
    user_options = []

    def initialize_options(self):
        self.build_lib = None
        self.editable_mode = False  # set by setuptools for pip install -e

    def finalize_options(self):
        self.set_undefined_options('build', ('build_lib', 'build_lib'))

    def target(self):
        root = self.get_finalized_command('install').install_lib if self.editable_mode else self.build_lib
        return os.path.join(root, PTH)

    def run(self):
        self.mkpath(os.path.dirname(self.target()))
        self.copy_file(PTH, self.target())

    def get_outputs(self):
        return [] if self.editable_mode else [self.target()]

    def get_source_files(self):
        return [PTH]


class BuildWithPth(build):
    sub_commands = build.sub_commands + [('build_pth', None)]


setup(cmdclass={'build': BuildWithPth, 'build_pth': BuildPth})
