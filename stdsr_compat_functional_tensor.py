"""Makes ``import basicsr`` work on current torchvision in every Python process of an environment with stdsr.

basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, a private module that torchvision 0.17 renamed
to ``_functional_tensor``; without an alias ``import basicsr`` fails. ``stdsr_compat_functional_tensor.pth``,
installed beside this module into site-packages, imports it when Python starts, so a BasicSR user's plain
``import basicsr`` works without ``import stdsr`` first (``stdsr.compat`` installs it too, for a checkout used
from ``PYTHONPATH``). It is a top-level module, not part of ``stdsr``: importing the package at every start-up
would import torch and BasicSR in every Python process.

Start-up cost is one finder appended to ``sys.meta_path``: nothing is imported until something asks for the old
name, and the finder is asked last, so a torchvision that still has the old module is untouched.
"""
import importlib
import sys
from importlib.machinery import ModuleSpec

OLD = 'torchvision.transforms.functional_tensor'
NEW = 'torchvision.transforms._functional_tensor'


class RenamedModuleAlias:
    """Finder and loader of ``OLD`` as a module holding the names of ``NEW`` (the same function objects)."""

    def find_spec(self, fullname, path=None, target=None):
        return ModuleSpec(fullname, self) if fullname == OLD else None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        new = importlib.import_module(NEW)
        module.__dict__.update({k: v for k, v in vars(new).items() if not k.startswith('__') or k == '__all__'})


def install():
    """Append the alias finder to ``sys.meta_path`` once; returns whether it was added now."""
    if any(isinstance(finder, RenamedModuleAlias) for finder in sys.meta_path):
        return False
    sys.meta_path.append(RenamedModuleAlias())
    return True


install()
