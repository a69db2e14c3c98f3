"""Compare distillation methods under equal budgets: the command line of ``stdsr.tools.compare_distillation``.

A shim over :mod:`stdsr.tools.compare_distillation` (``--help`` lists the arguments).
"""
import sys

from stdsr.tools.compare_distillation import main

if __name__ == '__main__':
    sys.exit(main())
