"""Models; every ``*_model.py`` here registers into BasicSR's MODEL_REGISTRY on import."""
from stdsr.utils.auto_import import import_modules_with_suffix

_model_modules = import_modules_with_suffix(__name__, __file__, '_model.py')
