"""INT8 copy of an exported student, calibrated on LR training clips.

The command line over :mod:`stdsr.tools.quantize_onnx` (see docs/deployment.md).
"""
import sys

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers the archs)
from stdsr.tools.quantize_onnx import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('quantize_onnx', main))
