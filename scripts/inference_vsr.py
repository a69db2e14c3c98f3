"""Super-resolve real footage: a folder of frames or a video file in, PNG frames or a video file out. No GT needed.

A shim over :mod:`stdsr.tools.inference_vsr` (its docstring has the examples; ``--help`` lists the arguments).
"""
import sys

from stdsr.tools.inference_vsr import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('inference_vsr', main))
