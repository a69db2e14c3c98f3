"""The one compatibility fix basicsr 1.4.2 needs on current torchvision.

basicsr.data.degradations imports ``torchvision.transforms.functional_tensor``, a private module that
torchvision 0.17 renamed to ``_functional_tensor``; without this alias ``import basicsr`` fails.
The alias is installed only when the old module is really missing, so older torchvision is untouched.
"""
import importlib
import importlib.util
import sys

_OLD = 'torchvision.transforms.functional_tensor'
_NEW = 'torchvision.transforms._functional_tensor'


def patch_torchvision_functional_tensor():
    """Alias the renamed torchvision module under its old name, if (and only if) the old one is gone."""
    if _OLD in sys.modules or importlib.util.find_spec(_OLD) is not None:
        return False
    sys.modules[_OLD] = importlib.import_module(_NEW)
    return True


patch_torchvision_functional_tensor()
