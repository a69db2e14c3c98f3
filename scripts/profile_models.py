"""Parameters, FLOPs and runtime per output frame, and the F^SR tap, of the networks of option files.

Examples::

    python scripts/profile_models.py -opt options/train/STD/students/demo/train_VSRNet_STD_demo.yml
    python scripts/profile_models.py -opt A.yml B.yml:network_t --net network_g --device cpu --repeats 5
    python scripts/profile_models.py --arch "{type: BasicVSR, num_feat: 64, num_block: 30, spynet_path: ~}"

The command line over :mod:`stdsr.tools.profile_models`. ``-opt FILE[:network_x]`` takes the network key
after a colon, else every key of ``--net``. ``--arch`` takes inline YAML network sections. Every row is per output
frame: a sliding network reads its own window (``num_frame``) and returns 1 frame; a recurrent one reads ``t``
frames of ``--shape`` and returns t.
"""
import argparse
import sys

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers the archs)
from stdsr.tools.profile_models import run
from stdsr.utils.cli import run_cli


def build_parser():
    parser = argparse.ArgumentParser(description='Profile VSR networks per output frame.')
    parser.add_argument('-opt', nargs='+', default=[], metavar='FILE[:NET]', help='option file(s)')
    parser.add_argument('--net', nargs='+', default=['network_g'], help='network key(s) of every option file')
    parser.add_argument('--arch', nargs='+', default=[], metavar='YAML', help='inline network section(s)')
    parser.add_argument('--labels', nargs='+', default=None, help='row labels, one per network, in order')
    parser.add_argument('--shape', nargs=4, type=int, default=[5, 3, 64, 64], metavar=('T', 'C', 'H', 'W'),
                        help='LR input (recurrent: t frames -> t outputs; sliding: its own window -> 1 output)')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'auto'], default='auto')
    parser.add_argument('--repeats', type=int, default=10, help='timed forward passes (median is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed forward passes first')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default); 1 gives stable timings on a busy machine')
    parser.add_argument('--tap', nargs='+', default=None, help='F^SR module path(s) for every network')
    parser.add_argument('--output', '--markdown', dest='markdown', default=None, metavar='FILE',
                        help='also write the table to FILE (markdown)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --output file')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def main(argv=None):
    """Exit status: 0, or 2 with one ``profile_models: error: ...`` line for bad input."""
    def profile(arguments):
        run(build_parser().parse_args(arguments))

    return run_cli('profile_models', profile, argv)


if __name__ == '__main__':
    sys.exit(main())
