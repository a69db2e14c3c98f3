"""Network architectures; every ``*_arch.py`` here registers into BasicSR's ARCH_REGISTRY on import."""
from stdsr.utils.auto_import import import_modules_with_suffix

_arch_modules = import_modules_with_suffix(__name__, __file__, '_arch.py')
