"""Show what distillation transferred: F^SR attention maps of teacher and students, and SR crops side by side.

The command line over :mod:`stdsr.tools.figures.attention`: for each chosen frame of one clip, writes
``attention_<clip>_<frame>.png`` (F^SR attention maps, rows = networks in command-line order, as the paper's
Fig. 3) and ``crops_<clip>_<frame>.png`` (a crop from bicubic, every network and GT, with PSNR-Y) to ``--output``.

Example (the demo's baseline, STD student and teacher on the first demo test clip):
    python scripts/visualize_attention.py --opt baseline=options/train/STD/demo/train_VESPCNS_baseline_demo.yml \\
        --opt STD=options/train/STD/demo/train_VESPCNS_STD_demo.yml \\
        --opt teacher=options/train/STD/demo/train_VESPCN_teacher_demo.yml \\
        --gt datasets/demo/test/GT/chelsea_000 --lq datasets/demo/test/BIx4/chelsea_000 \\
        --frames 2,4 --crop 16,16,32,32 --output results/attention
"""
import argparse
import sys

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.data.lr_degradation import check_mode
from stdsr.tools.figures.attention import run
from stdsr.utils.cli import run_cli
from stdsr.inference.model_loading import add_model_arguments


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument('--gt', help='folder of the clip\'s GT frames (for PSNR, the GT panel, or making LR)')
    parser.add_argument('--lq', help='folder of the clip\'s LR frames (default: made from --gt)')
    parser.add_argument('--degradation', type=str.upper, choices=('BI', 'BD'), default='BI',
                        help='how LR is made from --gt when --lq is not given')
    parser.add_argument('--max-frames', type=int, help='use only the first frames of the clip (memory)')
    parser.add_argument('--frames', help='comma-separated frame indices (default: the centre frame)')
    parser.add_argument('--crop', help='x,y,w,h box in SR pixels (default: the centred half-size square)')
    parser.add_argument('--layer', action='append', default=[], metavar='[LABEL=]PATH',
                        help='F^SR module path, for all networks or one '
                        '(default: conv_last:input, what the output conv receives)')
    parser.add_argument('--normalize', choices=('none', 'l2'), default='none', help='attention_map normalisation')
    parser.add_argument('--bicubic', choices=('matlab', 'torch'), default='matlab', help='bicubic crop panel')
    parser.add_argument('--panel-px', type=int, default=240, help='side of one panel in pixels')
    parser.add_argument('--cmap', default='jet', help='matplotlib colour map of the attention maps')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--output', '--out', dest='out', required=True, help='output folder')
    parser.add_argument('--overwrite', action='store_true', help='replace figures written before')
    args = parser.parse_args(argv)
    if args.panel_px < 64:
        parser.error('--panel-px must be >= 64')
    args.degradation = check_mode(args.degradation)
    return args


def main(argv=None):
    return run(parse_args(argv))
