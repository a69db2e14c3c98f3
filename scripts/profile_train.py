"""Per-phase time and peak memory of training steps of an option file (ClipVSRModel or DistillVSRModel).

A shim over :mod:`stdsr.tools.profile_train` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.profile_train import main

if __name__ == '__main__':
    main()
