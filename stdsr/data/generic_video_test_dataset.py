"""Validation/test dataset returning whole clips of any ``<root>/<clip>/`` tree or LMDB, with or without GT."""
from torch.utils import data as data

from basicsr.utils.registry import DATASET_REGISTRY
from stdsr.data.clip_io import (LOADER_KEYS, ClipTree, DataError, FrameReader, check_clip_sides, check_options,
                                check_pair_sizes, check_same_size, frames_to_tensor, io_backend_type, positive_int,
                                read_video_meta_info)


@DATASET_REGISTRY.register()
class GenericVideoTestDataset(data.Dataset):
    """One item per clip: every frame of the clip (up to ``max_frames``), in temporal order.

    Works for any layout (Vid4, SPMCS, UDM10, REDS4, Vimeo-90K-T, a demo folder) rather than a list of
    known set names. Clips come from ``meta_info_file`` if given (its frame count must match the tree),
    else from scanning the LQ tree (folders holding frames, or LMDB key prefixes). ``dataroot_gt`` may be
    None for inference; when set, each clip's GT frame list must equal its LQ frame list.

    Returns ``{'lq': (T,3,h,w), 'gt': (T,3,H,W) (only with GT), 'clip': str, 'frame_names': [stems]}``.

    Options: dataroot_lq, dataroot_gt (None), io_backend ({type: disk|lmdb}), meta_info_file (None),
    scale (required with GT), max_frames (None), plus BasicSR's loader keys.
    """

    OPTION_KEYS = LOADER_KEYS | frozenset({'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'max_frames'})
    REQUIRED_KEYS = ('dataroot_lq', 'io_backend')

    def __init__(self, opt):
        super().__init__()
        owner = type(self).__name__
        check_options(opt, self.OPTION_KEYS, self.REQUIRED_KEYS, owner)
        self.opt = opt
        self.lq_root = str(opt['dataroot_lq'])
        self.gt_root = None if opt.get('dataroot_gt') is None else str(opt['dataroot_gt'])
        if self.gt_root is not None and opt.get('scale') is None:
            raise DataError(f"{owner}: missing required option key 'scale' (needed to check GT against LQ).")
        self.scale = positive_int(opt, 'scale', owner) if opt.get('scale') is not None else None
        self.max_frames = positive_int(opt, 'max_frames', owner) if opt.get('max_frames') is not None else None

        backend = io_backend_type(opt, owner)
        self.clips = self._index_clips(backend, opt.get('meta_info_file'))
        self.reader = FrameReader(opt['io_backend'])  # LMDBs open on first read, in the worker

    def _index_clips(self, backend, meta_info_file):
        """``[(clip, [frame stems])]`` from meta_info or a scan, GT checked against LQ; no image decoding."""
        lq_tree = ClipTree(self.lq_root, backend)
        gt_tree = ClipTree(self.gt_root, backend) if self.gt_root is not None else None
        if meta_info_file is None:
            listed = list(lq_tree.clips().items())
            check_clip_sides([clip for clip, _ in listed], lq_tree, gt_tree)
        else:
            meta = read_video_meta_info(meta_info_file)
            check_clip_sides([clip for clip, _, _ in meta], lq_tree, gt_tree, meta_info_file)
            listed = [(clip, self._meta_frames(lq_tree, clip, n, meta_info_file)) for clip, n, _ in meta]
        if gt_tree is not None:
            for clip, stems in listed:
                self._match_gt(gt_tree, clip, stems)
        if self.max_frames is not None:
            listed = [(clip, stems[:self.max_frames]) for clip, stems in listed]
        return listed

    @staticmethod
    def _meta_frames(tree, clip, num_frames, meta_info_file):
        stems = tree.frames(clip)
        if len(stems) != num_frames:
            raise DataError(f"clip '{clip}': meta_info_file {meta_info_file} says {num_frames} frames but "
                            f"{tree.locate(clip, '*')} matches {len(stems)}.")
        return stems

    @staticmethod
    def _match_gt(gt_tree, clip, lq_stems):
        gt_stems = gt_tree.frames(clip)
        if gt_stems != lq_stems:
            only_lq = sorted(set(lq_stems) - set(gt_stems))[:3]
            only_gt = sorted(set(gt_stems) - set(lq_stems))[:3]
            raise DataError(f"clip '{clip}': GT frames ({len(gt_stems)}, in {gt_tree.locate(clip, '*')}) differ "
                            f'from LQ frames ({len(lq_stems)}); only in LQ: {only_lq}, only in GT: {only_gt}.')

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip, stems = self.clips[index]
        lq_where = [self.reader.locate(self.lq_root, clip, stem) for stem in stems]
        img_lqs = self.reader.read_clip(self.lq_root, clip, stems)
        item = {'clip': clip, 'frame_names': list(stems)}
        if self.gt_root is not None:
            img_gts = self.reader.read_clip(self.gt_root, clip, stems)
            for stem, gt, lq, lq_at in zip(stems, img_gts, img_lqs, lq_where):
                check_pair_sizes(gt, lq, self.scale, self.reader.locate(self.gt_root, clip, stem), lq_at)
            item['gt'] = frames_to_tensor(img_gts)
        check_same_size(img_lqs, lq_where)
        item['lq'] = frames_to_tensor(img_lqs)
        return item
