"""Official VSR downloads -> the layout the option files read: the command line of
:mod:`stdsr.data.preparation.vsr_recipes` (see its docstring for what each sub-command writes).

    python scripts/data_preparation/prepare_vsr_datasets.py vimeo90k --input datasets/raw/vimeo_septuplet --workers 8
    python scripts/data_preparation/prepare_vsr_datasets.py reds --input datasets/raw/REDS
    python scripts/data_preparation/prepare_vsr_datasets.py vid4 --input datasets/raw/Vid4/GT
"""
import argparse
import sys

from stdsr.data.preparation.vsr_recipes import (TEST_SETS, RecipeError, prepare_reds, prepare_test_set,
                                                prepare_vimeo90k)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='dataset', required=True)
    for name in ('vimeo90k', 'reds') + tuple(TEST_SETS):
        p = sub.add_parser(name)
        p.add_argument('--input', required=True, help='the extracted download')
        p.add_argument('--output', default='datasets', help='data root (default: datasets)')
        p.add_argument('--overwrite', action='store_true', help='rebuild existing outputs')
        if name == 'vimeo90k':
            p.add_argument('--bd', action='store_true', help='also make BDx4 LR and its LMDB')
            p.add_argument('--workers', type=int, default=1, help='parallel LR generation processes')
        if name in TEST_SETS:
            p.add_argument('--gt-subdir', default='truth', help="GT folder inside each clip, if any (default 'truth')")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.dataset == 'vimeo90k':
            prepare_vimeo90k(args.input, args.output, args.bd, args.workers, args.overwrite)
        elif args.dataset == 'reds':
            prepare_reds(args.input, args.output, args.overwrite)
        else:
            prepare_test_set(args.dataset, args.input, args.output, gt_subdir=args.gt_subdir, overwrite=args.overwrite)
    except (RecipeError, FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f'prepare_vsr_datasets: error: {err}')
    return 0
