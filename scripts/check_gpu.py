"""Run once on a GPU machine: a few training steps of a tiny teacher/student pair on every CUDA path.

A shim over :mod:`stdsr.tools.check_gpu` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.check_gpu import main

if __name__ == '__main__':
    sys.exit(main())
