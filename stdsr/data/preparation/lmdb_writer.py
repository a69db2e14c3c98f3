"""Pack video frame trees into LMDBs for BasicSR's video datasets, with BasicSR's meta_info files.

Modes: ``folder`` (``<root>/<clip>/<frame>.png`` -> keys ``<clip>/<frame stem>``), ``vimeo90k`` (septuplets of a
list file -> ``00001/0001/im1``) and ``reds`` (``train_sharp`` and ``train_sharp_bicubic/X4`` -> two LMDBs).

BasicSR's ``make_lmdb_from_imgs`` crashes on a corrupt image without naming it, prints a line per image and
leaves a half-filled LMDB that a rerun refuses as existing. Here every image is decoded (a failure names the
file), the LMDB and its ``meta_info.txt`` are written into a temporary folder renamed into place when complete,
the data-set level meta_info file is checked writable before and written atomically after, and progress is one
bar. The LMDB format is BasicSR's: PNG-encoded values, ``<key>.png (h,w,c) <compress>`` lines in
``meta_info.txt``.
"""
import os
import shutil
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from os import path as osp

import cv2
import lmdb
from tqdm import tqdm

from stdsr.data.preparation.lr_tree import IMG_EXTENSIONS, PreparationError
from stdsr.utils.atomic_files import atomic_folder, write_text_atomic
from stdsr.utils.output_paths import check_output_file, check_writable_dir

DEFAULT_THREADS = 1
MIN_MAP_SIZE = 64 << 20  # LMDB page overhead dominates tiny images
COMMIT_EVERY = 500


def is_image(name):
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith('.')


def scan_clip_tree(root):
    """Map each clip folder of ``root`` to its sorted frame files; fails loudly on a wrong layout."""
    if not osp.isdir(root):
        raise PreparationError(f'clip root {root} does not exist')
    clips = OrderedDict()
    for clip in sorted(os.listdir(root)):
        clip_dir = osp.join(root, clip)
        if not osp.isdir(clip_dir) or clip.startswith('.'):
            continue
        frames = sorted(f for f in os.listdir(clip_dir) if is_image(f))
        if frames:
            clips[clip] = frames
    if not clips:
        raise PreparationError(f'no <clip>/<frame> images under {root}; expected <root>/<clip>/<frame>.png')
    return clips


def check_lmdb_target(lmdb_path, overwrite=False):
    """An LMDB path ends with .lmdb, is not taken (unless ``overwrite``) and its folder can be written."""
    if not str(lmdb_path).endswith('.lmdb'):
        raise PreparationError(f"LMDB path must end with '.lmdb', got {lmdb_path}")
    if osp.lexists(lmdb_path):
        if not overwrite:
            raise PreparationError(f'{lmdb_path} already exists; pass --overwrite to replace it')
        if not osp.isdir(lmdb_path) or osp.islink(lmdb_path):
            raise PreparationError(f'{lmdb_path} exists and is not an LMDB folder; remove it by hand')
    check_writable_dir(osp.dirname(osp.abspath(lmdb_path)), 'folder of the LMDB')


def estimate_map_size(data_root, rel_paths):
    """Reserve 10x the source bytes (PNG level 1 may be larger than the source; JPEG much larger); only address
    space is reserved, so a generous bound costs nothing on 64-bit systems."""
    total = sum(osp.getsize(osp.join(data_root, p)) for p in rel_paths)
    return max(MIN_MAP_SIZE, 10 * total)


def encode_image(path, compress_level):
    """(PNG bytes, (h, w, c)) of one image; an image that does not decode names its file."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise PreparationError(f'cannot decode image {path} (truncated or not an image?)')
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise PreparationError(f'cannot encode image {path} as PNG')
    h, w = img.shape[:2]
    return buf.tobytes(), (h, w, 1 if img.ndim == 2 else img.shape[2])


def write_lmdb(data_root, rel_paths, keys, lmdb_path, overwrite=False, n_thread=DEFAULT_THREADS, compress_level=1,
               progress=True):
    """Write the images ``rel_paths`` (under ``data_root``) as ``keys`` into ``lmdb_path``; returns the keys."""
    if not keys:
        raise PreparationError(f'no images to write into {lmdb_path}')
    for key in keys:
        if not key.isascii():
            raise PreparationError(f'LMDB keys must be ASCII, got {key!r}')
    check_lmdb_target(lmdb_path, overwrite)
    try:
        with atomic_folder(lmdb_path, replace=overwrite) as tmp:
            env = lmdb.open(tmp, map_size=estimate_map_size(data_root, rel_paths))
            meta = []
            try:
                txn = env.begin(write=True)
                with ThreadPoolExecutor(max(1, n_thread)) as pool:  # cv2 releases the GIL while decoding
                    encoded = pool.map(lambda p: encode_image(osp.join(data_root, p), compress_level), rel_paths)
                    bar = tqdm(zip(keys, encoded), total=len(keys), unit='img', desc=osp.basename(lmdb_path),
                               disable=not progress)
                    for i, (key, (data, shape)) in enumerate(bar, 1):
                        txn.put(key.encode('ascii'), data)
                        meta.append(f"{key}.png ({','.join(str(v) for v in shape)}) {compress_level}\n")
                        if i % COMMIT_EVERY == 0:
                            txn.commit()
                            txn = env.begin(write=True)
                txn.commit()
            finally:
                env.close()
            with open(osp.join(tmp, 'meta_info.txt'), 'w') as f:
                f.writelines(meta)
    except lmdb.Error as err:  # a full disk reaches LMDB's commit as EIO ("Input/output error"), not ENOSPC
        free = shutil.disk_usage(osp.dirname(osp.abspath(lmdb_path))).free / 2**20
        raise PreparationError(f'cannot write {lmdb_path}: {err} ({free:,.0f} MiB free on its disk; LMDB reports a '
                               'full disk as an Input/output error); the previous LMDB, if any, is untouched and no '
                               'partial folder is left') from None
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
    """Write BasicSR's video meta_info atomically: one ``<clip> <num_frames> (h,w,c)`` line per clip.

    Args:
        clips (list[tuple]): (clip name, number of frames, (h, w, c)) per clip, in the order to write.
        meta_path (str): File to write; its folder is created.
    """
    write_text_atomic(meta_path, ''.join(f'{name} {num} {format_shape(shape)}\n' for name, num, shape in clips))


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


def _check_meta_target(meta_info):
    if meta_info:
        check_output_file(meta_info, '--meta-info file')


def folder_to_lmdb(root, lmdb_path, overwrite=False, n_thread=DEFAULT_THREADS, compress_level=1, meta_info=None,
                   progress=True):
    """Pack a ``<root>/<clip>/<frame>.png`` tree; keys are ``<clip>/<frame stem>``. Returns the keys."""
    _check_meta_target(meta_info)
    rel_paths, keys = [], []
    for clip, frames in scan_clip_tree(root).items():
        for frame in frames:
            rel_paths.append(f'{clip}/{frame}')
            keys.append(f'{clip}/{osp.splitext(frame)[0]}')
    write_lmdb(root, rel_paths, keys, lmdb_path, overwrite, n_thread, compress_level, progress)
    if meta_info:
        write_video_meta_info(video_meta_from_lmdb(lmdb_path), meta_info)
    return keys


def vimeo90k_keys(list_file, center_only=False):
    """Keys ``00001/0001/imN`` for every septuplet named in a Vimeo-90K list file."""
    if not osp.isfile(list_file):
        raise PreparationError(f'--list-file {list_file} does not exist')
    frames = (4, ) if center_only else range(1, 8)
    with open(list_file) as f:
        clips = [line.strip() for line in f if line.strip()]
    return [f'{clip}/im{i}' for clip in clips for i in frames]


def vimeo90k_to_lmdb(root, lmdb_path, list_file, center_only=False, overwrite=False, n_thread=DEFAULT_THREADS,
                     compress_level=1, meta_info=None, progress=True):
    """Pack Vimeo-90K septuplets (GT or an LR copy with the same layout). Returns the keys."""
    _check_meta_target(meta_info)
    seq_root = osp.join(root, 'sequences') if osp.isdir(osp.join(root, 'sequences')) else root
    keys = vimeo90k_keys(list_file, center_only)
    rel_paths = [f'{key}.png' for key in keys]
    missing = [p for p in rel_paths if not osp.isfile(osp.join(seq_root, p))]
    if missing:
        raise PreparationError(f'{len(missing)} listed frames missing under {seq_root}, e.g. {missing[0]}')
    write_lmdb(seq_root, rel_paths, keys, lmdb_path, overwrite, n_thread, compress_level, progress)
    if meta_info:
        write_video_meta_info(video_meta_from_lmdb(lmdb_path), meta_info)
    return keys


def reds_to_lmdb(root, gt_dir='train_sharp', lq_dir='train_sharp_bicubic/X4', overwrite=False,
                 n_thread=DEFAULT_THREADS, compress_level=1, progress=True):
    """Pack REDS GT and LQ trees into ``<root>/train_sharp.lmdb`` and ``<root>/train_sharp_bicubic.lmdb``.

    Both targets are checked before either is written, so a refusal never leaves a half-built pair.
    Returns the created LMDB paths.
    """
    jobs = [(osp.join(root, gt_dir), osp.join(root, 'train_sharp.lmdb'))]
    if lq_dir:
        jobs.append((osp.join(root, lq_dir), osp.join(root, 'train_sharp_bicubic.lmdb')))
    for src, dst in jobs:
        if not osp.isdir(src):
            raise PreparationError(f'REDS folder {src} does not exist')
        check_lmdb_target(dst, overwrite)
    for src, dst in jobs:
        folder_to_lmdb(src, dst, overwrite, n_thread, compress_level, progress=progress)
    return [dst for _, dst in jobs]
