"""Score a distillation run's teacher on its validation set against bicubic, before the long run starts.

A shim over :mod:`stdsr.tools.check_teacher` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.check_teacher import main

if __name__ == '__main__':
    sys.exit(main())
