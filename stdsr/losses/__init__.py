"""Losses; every ``*_loss.py`` here registers into BasicSR's LOSS_REGISTRY on import."""
from stdsr.utils.auto_import import import_modules_with_suffix

_loss_modules = import_modules_with_suffix(__name__, __file__, '_loss.py')
