"""Make LR frames (BI or BD degradation) from a GT clip tree or a flat folder of images.

The command line over :mod:`stdsr.data.preparation.lr_tree`: the output mirrors the input as PNG, GT sides that do
not divide by the scale are mod-cropped first, and the tree appears only once complete.

Example (Vid4 BDx4 from its GT):
    python scripts/data_preparation/generate_lr.py --input datasets/Vid4/GT --output datasets/Vid4/BDx4 \\
        --mode BD --scale 4
"""
import sys

from stdsr.tools.generate_lr import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('generate_lr', main))
