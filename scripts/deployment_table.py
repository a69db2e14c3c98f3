"""The deployment table of the students: size, PSNR, INT8 drop and ms/frame of PyTorch, onnxruntime fp32 and INT8.

The command line over :mod:`stdsr.tools.deployment_table` (see docs/deployment.md).
"""
import sys

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers the archs)
from stdsr.tools.deployment_table import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('deployment_table', main))
