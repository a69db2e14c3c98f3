"""The one compatibility fix basicsr 1.4.2 needs on current torchvision (``torchvision.transforms.functional_tensor``
was renamed): :mod:`stdsr_compat_functional_tensor`.

An installed stdsr has it from Python's start-up (its ``.pth`` file); importing it here covers a checkout used from
``PYTHONPATH`` without installing, before the package's first ``import basicsr``, and an editable install made
before that module existed (its finder knows only ``stdsr``): the module is then loaded from the checkout.
"""
import importlib.util
import sys
from os import path as osp

NAME = 'stdsr_compat_functional_tensor'

try:
    import stdsr_compat_functional_tensor  # noqa: F401  (installs the alias on import)
except ModuleNotFoundError:
    _spec = importlib.util.spec_from_file_location(
        NAME, osp.join(osp.dirname(osp.dirname(osp.realpath(__file__))), f'{NAME}.py'))
    sys.modules[NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[NAME])
