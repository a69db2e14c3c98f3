"""Clips per second read by PairedClipDataset from PNG folders and from LMDBs of the same frames.

A shim over :mod:`stdsr.tools.bench_io` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.bench_io import main

if __name__ == '__main__':
    main()
