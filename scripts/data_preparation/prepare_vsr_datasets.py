"""Official VSR downloads -> the layout the option files read: the command line of
:mod:`stdsr.data.preparation.vsr_recipes` (see its docstring for what each sub-command writes).

A shim over :mod:`stdsr.tools.data_preparation.prepare_vsr_datasets` (its docstring has the examples; ``--help`` lists
the arguments).
"""
import sys

from stdsr.tools.data_preparation.prepare_vsr_datasets import main

if __name__ == '__main__':
    sys.exit(main())
