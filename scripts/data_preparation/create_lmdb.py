"""Pack video frame trees into LMDBs for BasicSR's video datasets.

A shim over :mod:`stdsr.tools.data_preparation.create_lmdb` (its docstring has the examples; ``--help`` lists
the arguments).
"""
import sys

from stdsr.tools.data_preparation.create_lmdb import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('create_lmdb', main))
