"""Turn the official downloads of the VSR data sets into the layout stdsr's option files read.

Used by ``scripts/data_preparation/prepare_vsr_datasets.py`` (RAW is ``--input``, the extracted download; OUT is
``--output``, the data root, default ``datasets``):

    vimeo90k RAW   RAW = vimeo_septuplet/ (sequences/, sep_trainlist.txt, sep_testlist.txt)
                   -> OUT/Vimeo90K/vimeo90k_train_{GT,BIx4}.lmdb  (all 7 frames, keys 00001/0001/im1)
                      OUT/meta_info/meta_info_Vimeo90K_train_GT.txt
                      OUT/Vimeo90K-T/{GT,BIx4}/00001_0266/im1..im7.png  (the test list, flattened)
    reds RAW       RAW = REDS root (train_sharp/, train_sharp_bicubic/X4/, optionally val_sharp/ and
                   val_sharp_bicubic/X4/: val clips 000-029 become 240-269, as BasicSR regroups them)
                   -> OUT/REDS/train_sharp.lmdb, OUT/REDS/train_sharp_bicubic.lmdb (every clip)
                      OUT/meta_info/meta_info_REDS_train_GT.txt (every clip but REDS4)
                      OUT/REDS4/{GT,BIx4}/{000,011,015,020}/
    vid4 | spmcs | udm10 RAW
                   RAW = clip folders holding the GT frames directly or in <clip>/truth/ (SPMCS, UDM10)
                   -> OUT/<Set>/GT/<clip>/<00000000>.png (mod-cropped), OUT/<Set>/{BIx4,BDx4}/...

LR frames are made with stdsr.data.lr_degradation (BI = MATLAB bicubic, BD = Gaussian sigma 1.6), except REDS,
whose official bicubic LR is used. ``--bd`` adds BDx4 for Vimeo-90K; ``--workers N`` degrades in parallel.
Existing outputs are refused unless ``--overwrite``.
"""
import os
import re
import shutil
from multiprocessing import Pool
from os import path as osp

import cv2

from stdsr.data.lr_degradation import downsample, mod_crop
from stdsr.data.preparation import lmdb_writer
from stdsr.data.preparation.lr_tree import IMG_EXTENSIONS
from stdsr.errors import RecipeError
from stdsr.utils.naming import natural_key
REDS4 = ('000', '011', '015', '020')
TEST_SETS = {  # name -> (folder under OUT, expected clip count, expected frames per clip or None)
    'vid4': ('Vid4', 4, None), 'spmcs': ('SPMCS', 30, 31), 'udm10': ('UDM10', 10, 32)
}


def images_in(folder):
    return sorted((f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS)), key=natural_key)


def refuse_existing(paths, overwrite):
    """Check every output before writing any; with ``overwrite`` remove them."""
    present = [p for p in paths if osp.lexists(p)]
    if present and not overwrite:
        raise RecipeError(f'{present[0]} already exists; pass --overwrite to rebuild it')
    for path in present:
        shutil.rmtree(path) if osp.isdir(path) and not osp.islink(path) else os.remove(path)


def read(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise RecipeError(f'cannot read image {path}')
    return img


def write(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise RecipeError(f'cannot write {path}')


def _degrade_job(job):
    src, dst, mode, scale = job
    write(dst, downsample(read(src), scale, mode))


def degrade_all(jobs, workers=1):
    """Run ``(src, dst, mode, scale)`` jobs, in a process pool when ``workers > 1``."""
    if workers > 1:
        with Pool(workers) as pool:
            for _ in pool.imap_unordered(_degrade_job, jobs, chunksize=64):
                pass
    else:
        for job in jobs:
            _degrade_job(job)


# ---------------------------------------------------------------------------------------------------- Vimeo-90K
def read_list(path):
    if not osp.isfile(path):
        raise RecipeError(f'{path} not found (it comes with the vimeo_septuplet download)')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def prepare_vimeo90k(raw, out='datasets', bd=False, workers=1, overwrite=False, log=print):
    """Training LMDBs (GT and LR, all seven frames), the training meta_info, and the flattened test set."""
    seq = osp.join(raw, 'sequences')
    if not osp.isdir(seq):
        raise RecipeError(f'{seq} not found: RAW must be the extracted vimeo_septuplet folder')
    train, test = read_list(osp.join(raw, 'sep_trainlist.txt')), read_list(osp.join(raw, 'sep_testlist.txt'))
    modes = ['BI'] + (['BD'] if bd else [])
    root = osp.join(out, 'Vimeo90K')
    lmdbs = [osp.join(root, 'vimeo90k_train_GT.lmdb')] + [osp.join(root, f'vimeo90k_train_{m}x4.lmdb') for m in modes]
    trees = [osp.join(root, f'vimeo_septuplet_{m}x4') for m in modes] + [osp.join(out, 'Vimeo90K-T')]
    meta = osp.join(out, 'meta_info', 'meta_info_Vimeo90K_train_GT.txt')
    refuse_existing(lmdbs + trees + [meta], overwrite)
    frames = [f'{clip}/im{i}.png' for clip in train + test for i in range(1, 8)]
    missing = [f for f in frames if not osp.isfile(osp.join(seq, f))]
    if missing:
        raise RecipeError(f'{len(missing)} listed frames missing under {seq}, e.g. {missing[0]}')
    for mode in modes:
        log(f'Vimeo-90K: {mode}x4 LR of {len(frames)} frames')
        degrade_all([(osp.join(seq, f), osp.join(root, f'vimeo_septuplet_{mode}x4', 'sequences', f), mode, 4)
                     for f in frames], workers)
    train_list = osp.join(raw, 'sep_trainlist.txt')
    lmdb_writer.vimeo90k_to_lmdb(raw, lmdbs[0], train_list, meta_info=meta)
    for mode, lmdb_path in zip(modes, lmdbs[1:]):
        lmdb_writer.vimeo90k_to_lmdb(osp.join(root, f'vimeo_septuplet_{mode}x4'), lmdb_path, train_list)
    for clip in test:  # Vimeo-90K-T as a clip tree: 00001/0266 -> 00001_0266
        flat = clip.replace('/', '_')
        for i in range(1, 8):
            write_copy(osp.join(seq, clip, f'im{i}.png'), osp.join(out, 'Vimeo90K-T', 'GT', flat, f'im{i}.png'))
            for mode in modes:
                write_copy(osp.join(root, f'vimeo_septuplet_{mode}x4', 'sequences', clip, f'im{i}.png'),
                           osp.join(out, 'Vimeo90K-T', f'{mode}x4', flat, f'im{i}.png'))
    log(f'Vimeo-90K: {len(train)} training septuplets in {", ".join(lmdbs)}; {len(test)} test septuplets in '
        f'{osp.join(out, "Vimeo90K-T")}')
    return lmdbs


def write_copy(src, dst):
    os.makedirs(osp.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


# ---------------------------------------------------------------------------------------------------- REDS
def reds_clips(raw):
    """``[(key clip, GT folder, LR folder)]`` relative to ``raw``: train clips, then val clips renumbered 240+."""
    clips = []
    for split, offset in (('train', 0), ('val', 240)):
        gt_root = osp.join(raw, f'{split}_sharp')
        if not osp.isdir(gt_root):
            if split == 'train':
                raise RecipeError(f'{gt_root} not found: RAW must hold the extracted REDS train_sharp folder')
            continue
        lr_root = osp.join(raw, f'{split}_sharp_bicubic', 'X4')
        if not osp.isdir(lr_root):
            raise RecipeError(f'{lr_root} not found (the official x4 bicubic LR of {split}_sharp)')
        for clip in sorted(os.listdir(gt_root)):
            if osp.isdir(osp.join(gt_root, clip)):
                clips.append((f'{int(clip) + offset:03d}', f'{split}_sharp/{clip}', f'{split}_sharp_bicubic/X4/{clip}'))
    return clips


def prepare_reds(raw, out='datasets', overwrite=False, log=print):
    """Both LMDBs over every clip, the training meta_info without REDS4, and REDS4 as clip trees."""
    clips = reds_clips(raw)
    lmdbs = [osp.join(out, 'REDS', 'train_sharp.lmdb'), osp.join(out, 'REDS', 'train_sharp_bicubic.lmdb')]
    meta = osp.join(out, 'meta_info', 'meta_info_REDS_train_GT.txt')
    reds4 = osp.join(out, 'REDS4')
    refuse_existing(lmdbs + [meta, reds4], overwrite)
    missing4 = [c for c in REDS4 if c not in {k for k, _, _ in clips}]
    if missing4:
        raise RecipeError(f'REDS4 clips {missing4} are not in {raw}/train_sharp')
    entries = {0: ([], []), 1: ([], [])}
    shapes = []
    for key, gt_rel, lr_rel in clips:
        gt_frames, lr_frames = images_in(osp.join(raw, gt_rel)), images_in(osp.join(raw, lr_rel))
        if [osp.splitext(f)[0] for f in gt_frames] != [osp.splitext(f)[0] for f in lr_frames]:
            raise RecipeError(f'{raw}/{gt_rel} and {raw}/{lr_rel} hold different frames')
        for idx, (rel, frames) in enumerate(((gt_rel, gt_frames), (lr_rel, lr_frames))):
            entries[idx][0].extend(f'{rel}/{f}' for f in frames)
            entries[idx][1].extend(f'{key}/{osp.splitext(f)[0]}' for f in frames)
        shapes.append((key, len(gt_frames), read(osp.join(raw, gt_rel, gt_frames[0])).shape))
    for idx, lmdb_path in enumerate(lmdbs):
        lmdb_writer.write_lmdb(raw, entries[idx][0], entries[idx][1], lmdb_path)
    lmdb_writer.write_video_meta_info([s for s in shapes if s[0] not in REDS4], meta)
    for key, gt_rel, lr_rel in clips:
        if key in REDS4:
            shutil.copytree(osp.join(raw, gt_rel), osp.join(reds4, 'GT', key))
            shutil.copytree(osp.join(raw, lr_rel), osp.join(reds4, 'BIx4', key))
    log(f'REDS: {len(clips)} clips in {", ".join(lmdbs)}; {len(clips) - len(REDS4)} for training ({meta}); '
        f'REDS4 in {reds4}')
    return lmdbs


# ---------------------------------------------------------------------------------------------------- test sets
def gt_clip_folders(raw, gt_subdir='truth'):
    """``{clip: folder of its GT frames}``: ``<clip>/`` itself or ``<clip>/<gt_subdir>/``."""
    if not osp.isdir(raw):
        raise RecipeError(f'{raw} not found')
    clips = {}
    for clip in sorted(os.listdir(raw), key=natural_key):
        folder = osp.join(raw, clip)
        if not osp.isdir(folder):
            continue
        if osp.isdir(osp.join(folder, gt_subdir)) and images_in(osp.join(folder, gt_subdir)):
            clips[clip] = osp.join(folder, gt_subdir)
        elif images_in(folder):
            clips[clip] = folder
    if not clips:
        raise RecipeError(f'no clip folders with frames under {raw} (expected <clip>/*.png or <clip>/{gt_subdir}/)')
    return clips


def prepare_test_set(name, raw, out='datasets', scale=4, gt_subdir='truth', overwrite=False, log=print):
    """GT renamed to 8-digit frame numbers and mod-cropped, then BI and BD LR made from it."""
    folder, expected_clips, expected_frames = TEST_SETS[name]
    root = osp.join(out, folder)
    refuse_existing([root], overwrite)
    clips = gt_clip_folders(raw, gt_subdir)
    jobs = []
    for clip, src in clips.items():
        frames = images_in(src)
        if expected_frames and len(frames) != expected_frames:
            log(f'warning: {folder} clip {clip} has {len(frames)} frames, the benchmark has {expected_frames}')
        for i, frame in enumerate(frames):
            gt_path = osp.join(root, 'GT', clip, f'{i:08d}.png')
            write(gt_path, mod_crop(read(osp.join(src, frame)), scale))
            jobs += [(gt_path, osp.join(root, f'{mode}x{scale}', clip, f'{i:08d}.png'), mode, scale)
                     for mode in ('BI', 'BD')]
    degrade_all(jobs)
    if len(clips) != expected_clips:
        log(f'warning: {folder} has {len(clips)} clips, the benchmark has {expected_clips}')
    log(f'{folder}: {len(clips)} clips in {root}/{{GT,BIx{scale},BDx{scale}}}')
    return root
