"""Render the embedded demo VSR data set from photographs shipped inside scikit-image (no download).

A shim over :mod:`stdsr.tools.data_preparation.make_demo_clips` (its docstring has the examples; ``--help`` lists
the arguments).
"""
import sys

from stdsr.tools.data_preparation.make_demo_clips import main

if __name__ == '__main__':
    main()
