"""The one compatibility fix basicsr 1.4.2 needs on current torchvision (``torchvision.transforms.functional_tensor``
was renamed): :mod:`stdsr_compat_functional_tensor`.

An installed stdsr has it from Python's start-up (its ``.pth`` file); importing it here covers a checkout used from
``PYTHONPATH`` without installing, before the package's first ``import basicsr``.
"""
import stdsr_compat_functional_tensor  # noqa: F401  (installs the alias on import)
