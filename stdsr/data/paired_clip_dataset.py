"""Training dataset of paired GT/LQ clips, one random N-frame window per clip per sample."""
import random

from torch.utils import data as data

from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils.registry import DATASET_REGISTRY
from stdsr.data.clip_io import (LOADER_KEYS, ClipTree, DataError, FrameReader, check_clip_sides, check_options,
                                check_pair_sizes, check_same_size, frame_stems, frames_to_tensor, io_backend_type,
                                positive_int, read_video_meta_info)


@DATASET_REGISTRY.register()
class PairedClipDataset(data.Dataset):
    """Paired GT/LQ clips listed in a BasicSR video meta_info file, for training recurrent/sliding VSR nets.

    Each item takes clip ``index``, picks an interval from ``interval_list`` and a random start so that
    ``num_frame`` frames at that interval fit, optionally reverses them in time, then applies one random
    GT crop (with its LQ crop) and one flip/rotation to every frame of both GT and LQ.

    Returns ``{'lq': (N,3,h,w), 'gt': (N,3,H,W), 'key': '<clip>/<start:08d>'}``, float32 RGB in [0, 1];
    ``start`` is the 0-based position of the window's first (lowest) frame within the clip.

    Options: dataroot_gt, dataroot_lq, meta_info_file, io_backend ({type: disk|lmdb}), num_frame, scale,
    interval_list ([1]), random_reverse (False), gt_size (None: no crop), use_hflip (False), use_rot (False),
    filename_tmpl ('{:08d}'), start_frame (0), plus BasicSR's loader keys.
    """

    OPTION_KEYS = LOADER_KEYS | frozenset({
        'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'num_frame', 'interval_list', 'random_reverse', 'gt_size',
        'use_hflip', 'use_rot', 'filename_tmpl', 'start_frame'
    })
    REQUIRED_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'num_frame', 'scale')

    def __init__(self, opt):
        super().__init__()
        owner = type(self).__name__
        check_options(opt, self.OPTION_KEYS, self.REQUIRED_KEYS, owner)
        self.opt = opt
        self.gt_root, self.lq_root = str(opt['dataroot_gt']), str(opt['dataroot_lq'])
        self.num_frame = positive_int(opt, 'num_frame', owner)
        self.scale = positive_int(opt, 'scale', owner)
        self.interval_list = self._interval_list(opt, owner)
        self.gt_size = self._gt_size(opt, owner)
        self.random_reverse = bool(opt.get('random_reverse', False))
        self.use_hflip, self.use_rot = bool(opt.get('use_hflip', False)), bool(opt.get('use_rot', False))
        start_frame = opt.get('start_frame', 0)
        if isinstance(start_frame, bool) or not isinstance(start_frame, int) or start_frame < 0:
            raise DataError(f"{owner}: option 'start_frame' must be a non-negative integer, got {start_frame!r}.")
        tmpl = opt.get('filename_tmpl', '{:08d}')

        backend = io_backend_type(opt, owner)
        self.clips = self._index_clips(read_video_meta_info(opt['meta_info_file']), backend, tmpl, start_frame)
        self.reader = FrameReader(opt['io_backend'])  # LMDBs open on first read, in the worker

    def _interval_list(self, opt, owner):
        intervals = opt.get('interval_list', [1])
        if (not isinstance(intervals, (list, tuple)) or not intervals
                or any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in intervals)):
            raise DataError(f"{owner}: option 'interval_list' must be a non-empty list of positive integers, "
                            f'got {intervals!r}.')
        return list(intervals)

    def _gt_size(self, opt, owner):
        if opt.get('gt_size') is None:
            return None
        gt_size = positive_int(opt, 'gt_size', owner)
        if gt_size % self.scale:
            raise DataError(f"{owner}: option 'gt_size' {gt_size} is not a multiple of option 'scale' {self.scale}.")
        return gt_size

    def _index_clips(self, meta, backend, tmpl, start_frame):
        """Check every clip is long enough and fully present in both trees (one listdir / key lookup per clip)."""
        gt_tree, lq_tree = ClipTree(self.gt_root, backend), ClipTree(self.lq_root, backend)
        check_clip_sides([clip for clip, _, _ in meta], lq_tree, gt_tree, self.opt['meta_info_file'])
        span = (self.num_frame - 1) * max(self.interval_list) + 1
        clips = []
        for clip, num_frames, _ in meta:
            if num_frames < span:
                raise DataError(f"clip '{clip}' has {num_frames} frames but num_frame={self.num_frame} at "
                                f'interval {max(self.interval_list)} asks for {span} (meta_info_file '
                                f"{self.opt['meta_info_file']}).")
            stems = frame_stems(num_frames, tmpl, start_frame)
            gt_tree.require(clip, stems)
            lq_tree.require(clip, stems)
            clips.append((clip, stems))
        return clips

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip, stems = self.clips[index]
        start, positions = self._sample_window(len(stems))
        names = [stems[p] for p in positions]
        img_gts = self.reader.read_clip(self.gt_root, clip, names)
        img_lqs = self.reader.read_clip(self.lq_root, clip, names)
        self._check_sizes(clip, names, img_gts, img_lqs)
        img_gts, img_lqs = self._crop_and_augment(img_gts, img_lqs)
        return {'lq': frames_to_tensor(img_lqs), 'gt': frames_to_tensor(img_gts), 'key': f'{clip}/{start:08d}'}

    def _sample_window(self, length):
        """Random interval and start so ``num_frame`` frames fit; returns (lowest position, positions in order)."""
        interval = random.choice(self.interval_list)
        start = random.randint(0, length - ((self.num_frame - 1) * interval + 1))
        positions = [start + k * interval for k in range(self.num_frame)]
        if self.random_reverse and random.random() < 0.5:
            positions.reverse()
        return start, positions

    def _check_sizes(self, clip, names, img_gts, img_lqs):
        gt_where = [self.reader.locate(self.gt_root, clip, name) for name in names]
        lq_where = [self.reader.locate(self.lq_root, clip, name) for name in names]
        for gt, lq, gt_at, lq_at in zip(img_gts, img_lqs, gt_where, lq_where):
            check_pair_sizes(gt, lq, self.scale, gt_at, lq_at)
        check_same_size(img_lqs, lq_where)
        h_lq, w_lq = img_lqs[0].shape[:2]
        if self.gt_size is not None and min(h_lq, w_lq) * self.scale < self.gt_size:
            raise DataError(f"option 'gt_size' {self.gt_size} exceeds GT frame "
                            f'{gt_where[0]} of size '
                            f'{h_lq * self.scale}x{w_lq * self.scale}.')

    def _crop_and_augment(self, img_gts, img_lqs):
        """One crop position and one flip/rotation for every frame of GT and LQ alike."""
        if self.gt_size is not None:
            img_gts, img_lqs = paired_random_crop(img_gts, img_lqs, self.gt_size, self.scale)
            img_gts = img_gts if isinstance(img_gts, list) else [img_gts]
            img_lqs = img_lqs if isinstance(img_lqs, list) else [img_lqs]
        if self.use_hflip or self.use_rot:
            # augment flips in place: copy first so crops (views) never write into each other
            imgs = augment([img.copy() for img in img_gts + img_lqs], self.use_hflip, self.use_rot)
            img_gts, img_lqs = imgs[:len(img_gts)], imgs[len(img_gts):]
        return img_gts, img_lqs
