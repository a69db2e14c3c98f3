"""Download BasicSR model-zoo checkpoints (official EDVR teachers, SpyNet) into experiments/pretrained_models.

A shim over :mod:`stdsr.tools.download_pretrained_models` (its docstring has the examples; ``--help`` lists the
arguments).
"""
import sys

from stdsr.tools.download_pretrained_models import main

if __name__ == '__main__':
    sys.exit(main())
