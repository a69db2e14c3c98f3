"""The main job on the embedded demo data: demo clips -> teacher -> baseline student -> STD student -> table.

A shim over :mod:`stdsr.tools.run_demo` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.errors import DemoError
from stdsr.tools.run_demo import main

if __name__ == '__main__':
    try:
        main()
    except DemoError as err:
        sys.exit(f'[demo] {err}')
