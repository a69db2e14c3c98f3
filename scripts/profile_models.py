"""Parameters, FLOPs and runtime per output frame, and the F^SR tap, of the networks of option files.

A shim over :mod:`stdsr.tools.profile_models` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.profile_models import main

if __name__ == '__main__':
    sys.exit(main())
