"""Benchmark trained VSR models on clip trees or LMDBs: PSNR/SSIM (Y), tOF, runtime per frame, parameters.

The command line over :mod:`stdsr.tools.benchmarking`. Writes ``results.{md,csv,json}`` and
``psnr_vs_runtime.png`` to ``--output``. Examples (after ``make demo``; see docs/benchmark.md):
    python scripts/benchmark.py --opt baseline=options/train/STD/demo/train_VESPCNS_baseline_demo.yml \\
        --opt STD=options/train/STD/demo/train_VESPCNS_STD_demo.yml --demo datasets/demo --output results/bench
    python scripts/benchmark.py --ckpt STD=net_g_latest.pth --arch-opt edvr_s.yml \\
        --dataset Vid4=datasets/Vid4/GT,datasets/Vid4/BIx4 --dataset Vid4-BD=datasets/Vid4/GT --degradation BD \\
        --crop-border 0 --output results/bench_vid4
"""
import argparse
import sys

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.tools.benchmarking.runner import run
from stdsr.utils.cli import run_cli
from stdsr.inference.model_loading import BICUBIC_IMPLS, add_model_arguments
from stdsr.metrics.vsr_metrics import METRIC_NAMES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, required=False)
    parser.add_argument('--bicubic', choices=BICUBIC_IMPLS + ('none', ), default='matlab',
                        help='bicubic baseline row: MATLAB-exact (BasicSR imresize), torch, or none')
    data = parser.add_argument_group('data sets')
    data.add_argument('--dataset', action='append', default=[], metavar='NAME=GT_ROOT[,LQ_ROOT]',
                      help='clip tree (<root>/<clip>/<frame>.png) or .lmdb; repeatable')
    data.add_argument('--datasets', action='append', default=[], metavar='FILE.yml',
                      help='YAML list of {name, gt_root, lq_root?, degradation?, meta_info_file?}')
    data.add_argument('--gt-root', help='one data set: GT root (with --lq-root and --name)')
    data.add_argument('--lq-root', help='one data set: LQ root')
    data.add_argument('--name', help='one data set: its name (default: the GT folder name)')
    data.add_argument('--demo', metavar='ROOT', help='the demo set made by make_demo_clips.py (ROOT/test/{GT,BIx4}; '
                      'ROOT/test_real as demo_real)')
    data.add_argument('--degradation', type=str.upper, choices=('BI', 'BD'),
                      help='make LR from GT for data sets without an LQ root')
    data.add_argument('--scale', type=int, help='scale for --degradation (default: the models\' common scale)')
    data.add_argument('--center-frame-only', action='store_true',
                      help='score only the centre frame of each clip (Vimeo-90K-T convention); tOF is then undefined')
    data.add_argument('--max-clips', type=int, help='evaluate only the first clips of each data set')
    data.add_argument('--max-frames', type=int, help='evaluate only the first frames of each clip')
    ev = parser.add_argument_group('evaluation')
    ev.add_argument('--crop-border', type=int, default=0, help='pixels dropped on each side before measuring')
    ev.add_argument('--metrics', default=','.join(METRIC_NAMES), help=f'comma-separated subset of {METRIC_NAMES}')
    ev.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    ev.add_argument('--warmup', type=int, default=1, help='untimed runs on the first clip of each data set')
    ev.add_argument('--chunk', type=int, default=8, help='sliding windows per forward (bounds memory)')
    parser.add_argument('--output', '--out', dest='out', required=True,
                        help='output folder for results.{md,csv,json} and the plot')
    parser.add_argument('--overwrite', action='store_true', help='replace earlier results in --output')
    paper = parser.add_argument_group('paper tables (paper_tables.md: one table per test set)')
    paper.add_argument('--references', metavar='FILE.yml', help='published rows to show beside ours, e.g. '
                       'docs/reference_rows/basicsr_model_zoo.yml')
    paper.add_argument('--baseline', action='append', default=[], metavar='METHOD=BASELINE',
                       help="show METHOD's PSNR gain over BASELINE (repeatable)")
    parser.add_argument('--quiet', action='store_true', help='no per-clip log lines')
    args = parser.parse_args(argv)
    metrics = tuple(m.strip() for m in args.metrics.split(',') if m.strip())
    if not metrics or any(m not in METRIC_NAMES for m in metrics):
        parser.error(f'--metrics must be a comma-separated subset of {METRIC_NAMES}, got {args.metrics!r}')
    args.metrics = metrics
    for flag in ('max_clips', 'max_frames'):  # -3 ended in a traceback; 0 scored every clip without a word
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)}")
    if args.crop_border < 0 or args.warmup < 0 or (args.chunk is not None and args.chunk < 1):
        parser.error('--crop-border and --warmup must be >= 0, --chunk >= 1')
    return args


def main(argv=None):
    return run(parse_args(argv))
