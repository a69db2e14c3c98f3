"""Show what distillation transferred: F^SR attention maps of teacher and students, and SR crops side by side.

A shim over :mod:`stdsr.tools.visualize_attention` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.visualize_attention import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('visualize_attention', main))
