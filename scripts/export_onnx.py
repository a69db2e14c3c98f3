"""Export a trained student to ONNX, checked against PyTorch, with its ms/frame.

The command line over :mod:`stdsr.tools.export_onnx` (see docs/deployment.md).
"""
import sys

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers the archs)
from stdsr.tools.export_onnx import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('export_onnx', main))
