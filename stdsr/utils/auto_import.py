"""BasicSR-style auto-discovery: importing a sub-package imports every ``*_<kind>.py`` beside it,
so that the registry decorators in those files run and YAML ``type:`` names resolve."""
import importlib
import os
from os import path as osp


def import_modules_with_suffix(package_name, package_file, suffix):
    """Import ``<package_name>.<stem>`` for every file ``<stem><suffix>`` next to ``package_file``."""
    folder = osp.dirname(osp.abspath(package_file))
    stems = sorted(osp.splitext(name)[0] for name in os.listdir(folder) if name.endswith(suffix))
    return [importlib.import_module(f'{package_name}.{stem}') for stem in stems]
