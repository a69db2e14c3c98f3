"""Peak memory of a frozen teacher's forward at the training crop, measured on a few windows and extrapolated.

A shim over :mod:`stdsr.tools.measure_teacher_memory` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.measure_teacher_memory import main

if __name__ == '__main__':
    sys.exit(main())
