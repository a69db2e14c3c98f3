"""The paper's summary table over several student families: the command line of ``stdsr.tools.family_table``.

A shim over :mod:`stdsr.tools.family_table` (``--help`` lists the arguments).
"""
import sys

from stdsr.tools.family_table import main

if __name__ == '__main__':
    sys.exit(main())
