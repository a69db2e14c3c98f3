"""Make LR frames (BI or BD degradation) from a GT clip tree or a flat folder of images.

A shim over :mod:`stdsr.tools.data_preparation.generate_lr` (its docstring has the examples; ``--help`` lists
the arguments).
"""
import sys

from stdsr.tools.data_preparation.generate_lr import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('generate_lr', main))
