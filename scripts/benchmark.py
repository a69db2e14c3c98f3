"""Benchmark trained VSR models on clip trees or LMDBs: PSNR/SSIM (Y), tOF, runtime per frame, parameters.

A shim over :mod:`stdsr.tools.benchmark` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.benchmark import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('benchmark', main))
