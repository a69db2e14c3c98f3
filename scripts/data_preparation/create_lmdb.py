"""Pack video frame trees into LMDBs for BasicSR's video datasets.

Modes (sub-commands):
    folder    generic clip tree ``<root>/<clip>/<frame>.png`` -> keys ``<clip>/<frame stem>`` (``calendar/00000000``)
    vimeo90k  ``<root>/sequences/<00001>/<0001>/im1..im7.png`` listed in e.g. ``sep_trainlist.txt``
              -> keys ``00001/0001/im1`` (``--center-only`` keeps im4 only, as BasicSR's GT LMDB does)
    reds      ``<root>/train_sharp/<000>/<00000000>.png`` and ``<root>/train_sharp_bicubic/X4/...``
              -> ``<root>/train_sharp.lmdb`` and ``<root>/train_sharp_bicubic.lmdb`` with keys ``000/00000000``

Each LMDB gets BasicSR's own ``meta_info.txt`` (``<key>.png (h,w,c) <compress>``); ``--meta-info PATH`` also writes
the data-set level file in BasicSR's video format (``<clip> <num_frames> (h,w,c)``).

Examples:
    python scripts/data_preparation/create_lmdb.py folder datasets/demo/train/GT datasets/demo/train_GT.lmdb
    python scripts/data_preparation/create_lmdb.py vimeo90k datasets/vimeo90k/vimeo_septuplet \\
        datasets/vimeo90k/vimeo90k_train_GT.lmdb --list-file datasets/vimeo90k/sep_trainlist.txt
    python scripts/data_preparation/create_lmdb.py reds datasets/REDS
"""
import argparse
import os
import shutil
import sys
from collections import OrderedDict
from os import path as osp

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision)
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
DEFAULT_THREADS = 1  # >1 reads every image into memory first (BasicSR's multiprocessing_read); fine for demos only
MIN_MAP_SIZE = 64 << 20  # LMDB page overhead dominates tiny images


def is_image(name):
    return name.lower().endswith(IMG_EXTENSIONS)


def scan_clip_tree(root):
    """Map each clip folder of ``root`` to its sorted frame files; fails loudly on a wrong layout."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'Clip root {root} does not exist.')
    clips = OrderedDict()
    for clip in sorted(os.listdir(root)):
        clip_dir = osp.join(root, clip)
        if not osp.isdir(clip_dir):
            continue
        frames = sorted(f for f in os.listdir(clip_dir) if is_image(f))
        if frames:
            clips[clip] = frames
    if not clips:
        raise FileNotFoundError(f'No <clip>/<frame> images under {root}; expected <root>/<clip>/<frame>.png.')
    return clips


def prepare_lmdb_path(lmdb_path, overwrite=False):
    """Refuse to touch an existing LMDB unless asked; basicsr itself would sys.exit half-way instead."""
    if not lmdb_path.endswith('.lmdb'):
        raise ValueError(f"LMDB path must end with '.lmdb', got {lmdb_path}.")
    if osp.lexists(lmdb_path):
        if not overwrite:
            raise FileExistsError(f'{lmdb_path} already exists; pass overwrite (--overwrite) to replace it.')
        if not osp.isdir(lmdb_path) or osp.islink(lmdb_path):
            raise FileExistsError(f'{lmdb_path} exists and is not an LMDB folder; remove it by hand.')
        shutil.rmtree(lmdb_path)
    parent = osp.dirname(osp.abspath(lmdb_path))
    os.makedirs(parent, exist_ok=True)


def estimate_map_size(data_root, rel_paths):
    """Reserve 10x the source bytes (PNG level 1 may be larger than the source; JPEG much larger).

    basicsr's own estimate extrapolates from the first image only and overflows on small or uneven sets.
    The map is only reserved address space, so a generous bound costs nothing on 64-bit systems.
    """
    total = sum(osp.getsize(osp.join(data_root, p)) for p in rel_paths)
    return max(MIN_MAP_SIZE, 10 * total)


def write_lmdb(data_root, rel_paths, keys, lmdb_path, overwrite=False, n_thread=DEFAULT_THREADS, compress_level=1):
    """Common tail of every mode: check the target, then let basicsr write data and meta_info.txt."""
    if not keys:
        raise ValueError(f'No images to write into {lmdb_path}.')
    for key in keys:
        if not key.isascii():
            raise ValueError(f'LMDB keys must be ASCII, got {key!r}.')
    prepare_lmdb_path(lmdb_path, overwrite)
    make_lmdb_from_imgs(
        data_root,
        lmdb_path,
        rel_paths,
        keys,
        compress_level=compress_level,
        multiprocessing_read=n_thread > 1,
        n_thread=max(1, n_thread),
        map_size=estimate_map_size(data_root, rel_paths))
    return keys


def read_lmdb_meta_info(lmdb_path):
    """Parse the LMDB's own meta_info.txt into (key, (h, w, c)) pairs, in writing order."""
    entries = []
    with open(osp.join(lmdb_path, 'meta_info.txt')) as f:
        for line in f:
            if not line.strip():
                continue
            name, shape, _ = line.split()
            key = name[:-len('.png')] if name.endswith('.png') else name
            entries.append((key, tuple(int(v) for v in shape.strip('()').split(','))))
    return entries


def format_shape(shape):
    return '(' + ','.join(str(v) for v in shape) + ')'


def write_video_meta_info(clips, meta_path):
    """Write BasicSR's video meta_info: one ``<clip> <num_frames> (h,w,c)`` line per clip.

    Args:
        clips (list[tuple]): (clip name, number of frames, (h, w, c)) per clip, in the order to write.
        meta_path (str): File to write; its folder is created.
    """
    os.makedirs(osp.dirname(osp.abspath(meta_path)), exist_ok=True)
    with open(meta_path, 'w') as f:
        for name, num, shape in clips:
            f.write(f'{name} {num} {format_shape(shape)}\n')


def video_meta_from_lmdb(lmdb_path):
    """Group the LMDB's keys by clip (everything before the last '/'), keeping the first frame's shape."""
    clips = OrderedDict()
    for key, shape in read_lmdb_meta_info(lmdb_path):
        clip = key.rsplit('/', 1)[0]
        if clip in clips:
            clips[clip][1] += 1
        else:
            clips[clip] = [clip, 1, shape]
    return [tuple(v) for v in clips.values()]


def _finish(lmdb_path, meta_info):
    if meta_info:
        write_video_meta_info(video_meta_from_lmdb(lmdb_path), meta_info)


def folder_to_lmdb(root, lmdb_path, overwrite=False, n_thread=DEFAULT_THREADS, compress_level=1, meta_info=None):
    """Pack a ``<root>/<clip>/<frame>.png`` tree; keys are ``<clip>/<frame stem>``. Returns the keys."""
    rel_paths, keys = [], []
    for clip, frames in scan_clip_tree(root).items():
        for frame in frames:
            rel_paths.append(f'{clip}/{frame}')
            keys.append(f'{clip}/{osp.splitext(frame)[0]}')
    write_lmdb(root, rel_paths, keys, lmdb_path, overwrite, n_thread, compress_level)
    _finish(lmdb_path, meta_info)
    return keys


def vimeo90k_keys(list_file, center_only=False):
    """Keys ``00001/0001/imN`` for every septuplet named in a Vimeo-90K list file."""
    frames = (4, ) if center_only else range(1, 8)
    with open(list_file) as f:
        clips = [line.strip() for line in f if line.strip()]
    return [f'{clip}/im{i}' for clip in clips for i in frames]


def vimeo90k_to_lmdb(root,
                     lmdb_path,
                     list_file,
                     center_only=False,
                     overwrite=False,
                     n_thread=DEFAULT_THREADS,
                     compress_level=1,
                     meta_info=None):
    """Pack Vimeo-90K septuplets (GT or an LR copy with the same layout). Returns the keys."""
    seq_root = osp.join(root, 'sequences') if osp.isdir(osp.join(root, 'sequences')) else root
    keys = vimeo90k_keys(list_file, center_only)
    rel_paths = [f'{key}.png' for key in keys]
    missing = [p for p in rel_paths if not osp.isfile(osp.join(seq_root, p))]
    if missing:
        raise FileNotFoundError(f'{len(missing)} listed frames missing under {seq_root}, e.g. {missing[0]}.')
    write_lmdb(seq_root, rel_paths, keys, lmdb_path, overwrite, n_thread, compress_level)
    _finish(lmdb_path, meta_info)
    return keys


def reds_to_lmdb(root,
                 gt_dir='train_sharp',
                 lq_dir='train_sharp_bicubic/X4',
                 overwrite=False,
                 n_thread=DEFAULT_THREADS,
                 compress_level=1):
    """Pack REDS GT and LQ trees into ``<root>/train_sharp.lmdb`` and ``<root>/train_sharp_bicubic.lmdb``.

    Both targets are checked before either is written, so a refusal never leaves a half-built pair.
    Returns the created LMDB paths.
    """
    jobs = [(osp.join(root, gt_dir), osp.join(root, 'train_sharp.lmdb'))]
    if lq_dir:
        jobs.append((osp.join(root, lq_dir), osp.join(root, 'train_sharp_bicubic.lmdb')))
    for src, dst in jobs:
        if not osp.isdir(src):
            raise FileNotFoundError(f'REDS folder {src} does not exist.')
        if osp.lexists(dst) and not overwrite:
            raise FileExistsError(f'{dst} already exists; pass overwrite (--overwrite) to replace it.')
    for src, dst in jobs:
        folder_to_lmdb(src, dst, overwrite, n_thread, compress_level)
    return [dst for _, dst in jobs]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--overwrite', action='store_true', help='replace an existing LMDB')
    common.add_argument('--n-thread', type=int, default=DEFAULT_THREADS, help='>1: parallel read into memory')
    common.add_argument('--compress-level', type=int, default=1, help='PNG compression inside the LMDB')
    sub = parser.add_subparsers(dest='mode', required=True)

    p = sub.add_parser('folder', parents=[common], help='<root>/<clip>/<frame>.png tree')
    p.add_argument('root')
    p.add_argument('lmdb_path')
    p.add_argument('--meta-info', help='also write the video meta_info file here')

    p = sub.add_parser('vimeo90k', parents=[common], help='Vimeo-90K septuplets')
    p.add_argument('root', help='folder holding sequences/ (or the sequences folder itself)')
    p.add_argument('lmdb_path')
    p.add_argument('--list-file', required=True, help='e.g. sep_trainlist.txt')
    p.add_argument('--center-only', action='store_true', help='keep im4 only (BasicSR GT convention)')
    p.add_argument('--meta-info', help='also write the video meta_info file here')

    p = sub.add_parser('reds', parents=[common], help='REDS train_sharp and train_sharp_bicubic/X4')
    p.add_argument('root', help='REDS root, e.g. datasets/REDS')
    p.add_argument('--gt-dir', default='train_sharp')
    p.add_argument('--lq-dir', default='train_sharp_bicubic/X4', help="'' to skip the LQ LMDB")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common = dict(overwrite=args.overwrite, n_thread=args.n_thread, compress_level=args.compress_level)
    try:
        if args.mode == 'folder':
            keys = folder_to_lmdb(args.root, args.lmdb_path, meta_info=args.meta_info, **common)
            print(f'Wrote {len(keys)} images to {args.lmdb_path}.')
        elif args.mode == 'vimeo90k':
            keys = vimeo90k_to_lmdb(
                args.root, args.lmdb_path, args.list_file, args.center_only, meta_info=args.meta_info, **common)
            print(f'Wrote {len(keys)} images to {args.lmdb_path}.')
        else:
            paths = reds_to_lmdb(args.root, args.gt_dir, args.lq_dir, **common)
            print(f'Wrote {", ".join(paths)}.')
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f'create_lmdb: {err}')


if __name__ == '__main__':
    main()
