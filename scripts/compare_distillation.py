"""Compare distillation methods under equal budgets: the command line of ``stdsr.tools.compare``.

A shim over :mod:`stdsr.tools.compare` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.compare import main

if __name__ == '__main__':
    sys.exit(main())
