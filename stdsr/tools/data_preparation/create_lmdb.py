"""Pack video frame trees into LMDBs for BasicSR's video datasets.

The command line over :mod:`stdsr.data.preparation.lmdb_writer`. Modes (sub-commands):
    folder    generic clip tree ``<input>/<clip>/<frame>.png`` -> keys ``<clip>/<frame stem>``
    vimeo90k  ``<input>/sequences/<00001>/<0001>/im1..im7.png`` listed in ``--list-file`` -> keys ``00001/0001/im1``
              (``--center-only`` keeps im4 only, as BasicSR's GT LMDB does)
    reds      ``<input>/train_sharp/<000>/<00000000>.png`` and ``<input>/train_sharp_bicubic/X4/...``
              -> ``<input>/train_sharp.lmdb`` and ``<input>/train_sharp_bicubic.lmdb`` with keys ``000/00000000``

Each LMDB gets BasicSR's own ``meta_info.txt``; ``--meta-info PATH`` also writes the data-set level file in
BasicSR's video format (``<clip> <num_frames> (h,w,c)``). An LMDB appears only once complete.

Examples:
    python scripts/data_preparation/create_lmdb.py folder --input datasets/demo/train/GT \\
        --output datasets/demo/train_GT.lmdb
    python scripts/data_preparation/create_lmdb.py vimeo90k --input datasets/vimeo90k/vimeo_septuplet \\
        --output datasets/vimeo90k/vimeo90k_train_GT.lmdb --list-file datasets/vimeo90k/sep_trainlist.txt
    python scripts/data_preparation/create_lmdb.py reds --input datasets/REDS
"""
import argparse
import sys

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision)
from stdsr.data.preparation.lmdb_writer import DEFAULT_THREADS, folder_to_lmdb, reds_to_lmdb, vimeo90k_to_lmdb
from stdsr.utils.cli import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--overwrite', action='store_true', help='replace an existing LMDB')
    common.add_argument('--n-thread', type=int, default=DEFAULT_THREADS, help='threads decoding images')
    common.add_argument('--compress-level', type=int, default=1, help='PNG compression inside the LMDB')
    common.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    sub = parser.add_subparsers(dest='mode', required=True)

    p = sub.add_parser('folder', parents=[common], help='<input>/<clip>/<frame>.png tree')
    p.add_argument('--input', '-i', required=True, help='clip tree root')
    p.add_argument('--output', '-o', required=True, help='LMDB folder to create (ends with .lmdb)')
    p.add_argument('--meta-info', help='also write the video meta_info file here')

    p = sub.add_parser('vimeo90k', parents=[common], help='Vimeo-90K septuplets')
    p.add_argument('--input', '-i', required=True, help='folder holding sequences/ (or the sequences folder itself)')
    p.add_argument('--output', '-o', required=True, help='LMDB folder to create (ends with .lmdb)')
    p.add_argument('--list-file', required=True, help='e.g. sep_trainlist.txt')
    p.add_argument('--center-only', action='store_true', help='keep im4 only (BasicSR GT convention)')
    p.add_argument('--meta-info', help='also write the video meta_info file here')

    p = sub.add_parser('reds', parents=[common], help='REDS train_sharp and train_sharp_bicubic/X4')
    p.add_argument('--input', '-i', required=True, help='REDS root, e.g. datasets/REDS (the LMDBs go there too)')
    p.add_argument('--gt-dir', default='train_sharp')
    p.add_argument('--lq-dir', default='train_sharp_bicubic/X4', help="'' to skip the LQ LMDB")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common = dict(overwrite=args.overwrite, n_thread=args.n_thread, compress_level=args.compress_level,
                  progress=not args.no_progress)
    if args.mode == 'folder':
        keys = folder_to_lmdb(args.input, args.output, meta_info=args.meta_info, **common)
        print(f'Wrote {len(keys)} images to {args.output}.')
    elif args.mode == 'vimeo90k':
        keys = vimeo90k_to_lmdb(args.input, args.output, args.list_file, args.center_only, meta_info=args.meta_info,
                                **common)
        print(f'Wrote {len(keys)} images to {args.output}.')
    else:
        paths = reds_to_lmdb(args.input, args.gt_dir, args.lq_dir, **common)
        print(f'Wrote {", ".join(paths)}.')
