"""Datasets; every ``*_dataset.py`` here registers into BasicSR's DATASET_REGISTRY on import."""
from stdsr.utils.auto_import import import_modules_with_suffix

_dataset_modules = import_modules_with_suffix(__name__, __file__, '_dataset.py')
