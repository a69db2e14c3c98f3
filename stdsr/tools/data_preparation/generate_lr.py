"""Make LR frames (BI or BD degradation) from a GT clip tree or a flat folder of images.

The command line over :mod:`stdsr.data.preparation.lr_tree`: the output mirrors the input as PNG, GT sides that do
not divide by the scale are mod-cropped first, and the tree appears only once complete.

Example (Vid4 BDx4 from its GT):
    python scripts/data_preparation/generate_lr.py --input datasets/Vid4/GT --output datasets/Vid4/BDx4 \\
        --mode BD --scale 4
"""
import argparse
import sys

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision)
from stdsr.data.lr_degradation import MODES, SCALES
from stdsr.data.preparation.lr_tree import generate_lr
from stdsr.utils.cli import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', '-i', required=True, help='GT root: <root>/<clip>/<frame>.png or a flat folder')
    parser.add_argument('--output', '-o', required=True, help='LR root, mirrors --input')
    parser.add_argument('--mode', default='BI', type=str.upper, choices=MODES, help='degradation')
    parser.add_argument('--scale', default=4, type=int, choices=SCALES, help='downsampling factor')
    parser.add_argument('--overwrite', action='store_true', help='replace a non-empty output folder (as a whole)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    num = generate_lr(args.input, args.output, args.mode, args.scale, args.overwrite, not args.no_progress)
    print(f'Wrote {num} {args.mode}x{args.scale} LR images to {args.output}.')
