"""Benchmark data sets: ``--dataset``/``--datasets``/``--demo`` specs, and one set of clips ready to score
(GT frames with their LR, read or made by BI/BD degradation).
"""
import time
from dataclasses import dataclass
from os import path as osp

import numpy as np
import torch
from stdsr.config.yaml_reader import read_yaml_file

from stdsr.data.clip_io import ClipTree, FrameReader, check_clip_sides, read_video_meta_info
from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
from stdsr.data.lr_degradation import check_mode, check_scale, downsample, mod_crop
from stdsr.errors import BenchmarkError
from stdsr.metrics.vsr_metrics import tensor_to_frames

DATASET_KEYS = {'name', 'gt_root', 'lq_root', 'degradation', 'meta_info_file', 'center_frame_only'}


@dataclass
class DatasetSpec:
    name: str
    gt_root: str
    lq_root: str = None  # None: LR made from GT with ``degradation``
    degradation: str = None
    meta_info_file: str = None
    center_frame_only: bool = False  # Vimeo-90K-T convention: score only frame N//2 (the model still sees all N)

    @property
    def backend(self):
        return 'lmdb' if self.gt_root.rstrip('/').endswith('.lmdb') else 'disk'

    def describe(self):
        text = f'{self.lq_root} -> {self.gt_root}' if self.lq_root else f'{self.degradation}({self.gt_root})'
        return text + (', centre frames only' if self.center_frame_only else '')


def parse_dataset_arg(text):
    """``NAME=GT_ROOT[,LQ_ROOT]``."""
    if '=' not in text:
        raise BenchmarkError(f"--dataset '{text}': expected NAME=GT_ROOT[,LQ_ROOT]")
    name, roots = text.split('=', 1)
    parts = [p for p in roots.split(',') if p]
    if not name or len(parts) not in (1, 2):
        raise BenchmarkError(f"--dataset '{text}': expected NAME=GT_ROOT[,LQ_ROOT]")
    return DatasetSpec(name, parts[0], parts[1] if len(parts) == 2 else None)


def read_datasets_yaml(path):
    """A YAML list of ``{name, gt_root, lq_root?, degradation?, meta_info_file?}`` entries."""
    if not osp.isfile(path):
        raise BenchmarkError(f'--datasets file not found: {path}')
    entries = read_yaml_file(path, BenchmarkError, '--datasets file')
    if not isinstance(entries, list) or not entries:
        raise BenchmarkError(f'{path}: expected a non-empty YAML list of data sets')
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'name' not in entry or 'gt_root' not in entry:
            raise BenchmarkError(f'{path}: entry {i} needs at least name and gt_root, got {entry!r}')
        unknown = sorted(set(entry) - DATASET_KEYS)
        if unknown:
            raise BenchmarkError(f"{path}: entry '{entry['name']}' has unknown key(s) {unknown}; "
                                 f'valid: {sorted(DATASET_KEYS)}')
        entry = {k: (v if k == 'center_frame_only' else str(v) if v is not None else None) for k, v in entry.items()}
        if not isinstance(entry.get('center_frame_only', False), bool):
            raise BenchmarkError(f"{path}: entry '{entry['name']}': center_frame_only must be true or false")
        specs.append(DatasetSpec(**entry))
    return specs


def collect_datasets(args):
    specs = [parse_dataset_arg(d) for d in args.dataset]
    for path in args.datasets:
        specs += read_datasets_yaml(path)
    if args.gt_root:
        specs.append(DatasetSpec(args.name or osp.basename(osp.normpath(args.gt_root)), args.gt_root, args.lq_root))
    elif args.lq_root:
        raise BenchmarkError('--lq-root needs --gt-root')
    if args.demo:
        specs.append(DatasetSpec('demo', osp.join(args.demo, 'test', 'GT'), osp.join(args.demo, 'test', 'BIx4')))
        if osp.isdir(osp.join(args.demo, 'test_real', 'GT')):  # the real-motion test video (make_demo_clips.py)
            specs.append(DatasetSpec('demo_real', osp.join(args.demo, 'test_real', 'GT'),
                                     osp.join(args.demo, 'test_real', 'BIx4')))
    if not specs:
        raise BenchmarkError('no data set given: use --dataset NAME=GT_ROOT[,LQ_ROOT], --datasets FILE.yml or --demo')
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BenchmarkError(f'data set names must be unique, got {names}')
    for spec in specs:
        spec.center_frame_only = spec.center_frame_only or args.center_frame_only
        if spec.lq_root is None:
            spec.degradation = spec.degradation or args.degradation
            if spec.degradation is None:
                raise BenchmarkError(f"data set '{spec.name}' has no LQ root; give one (NAME=GT,LQ) or --degradation "
                                     'BI|BD to make LR frames from GT')
            try:
                spec.degradation = check_mode(spec.degradation)
            except ValueError as err:
                raise BenchmarkError(f"data set '{spec.name}': {err}") from None
        for root in (spec.gt_root, spec.lq_root):
            if root is not None and not osp.exists(root):
                raise BenchmarkError(f"data set '{spec.name}': {root} does not exist")
        if spec.lq_root and spec.lq_root.rstrip('/').endswith('.lmdb') != (spec.backend == 'lmdb'):
            raise BenchmarkError(f"data set '{spec.name}': GT and LQ must both be folders or both .lmdb, got "
                                 f'{spec.gt_root} and {spec.lq_root}')
    return specs


class BenchmarkSet:
    """Clips of one data set as ``(clip, frame_names, lq (N,3,h,w) float, gt [uint8 BGR frames])``, one at a time.

    With an LQ root, a GenericVideoTestDataset pairs GT and LQ (folders or LMDBs; the scale is read from the first
    frame pair). Without, the GT tree is read alone and each frame is mod-cropped and degraded (BI/BD) on the fly.
    """

    def __init__(self, spec, scale=None, max_frames=None, max_clips=None):
        self.spec = spec
        backend = spec.backend
        opt = {'name': spec.name, 'type': 'GenericVideoTestDataset', 'io_backend': {'type': backend}}
        if spec.meta_info_file:
            opt['meta_info_file'] = spec.meta_info_file
        if max_frames:
            opt['max_frames'] = max_frames
        if spec.lq_root:
            self.scale = self._pair_scale(spec, backend)
            opt.update(dataroot_gt=spec.gt_root, dataroot_lq=spec.lq_root, scale=self.scale)
        else:
            if scale is None:
                raise BenchmarkError(f"data set '{spec.name}': --scale is needed to make LR frames")
            try:
                self.scale = check_scale(scale)
            except ValueError as err:
                raise BenchmarkError(f"data set '{spec.name}': cannot make LR frames: {err}") from None
            opt.update(dataroot_lq=spec.gt_root)  # GT read as the only tree; LR is made from it below
        self.dataset = GenericVideoTestDataset(opt)
        self.num_clips = min(len(self.dataset), max_clips or len(self.dataset))

    @staticmethod
    def _pair_scale(spec, backend):
        """GT/LR size ratio of the first frame pair; it must be one integer for both sides. The clips to score are
        checked on both sides first (the dataset's own check), so a clip missing on one side is named as such."""
        lq_tree, gt_tree = ClipTree(spec.lq_root, backend), ClipTree(spec.gt_root, backend)
        if spec.meta_info_file:
            listed = [clip for clip, _, _ in read_video_meta_info(spec.meta_info_file)]
        else:
            listed = list(lq_tree.clips())
        check_clip_sides(listed, lq_tree, gt_tree, spec.meta_info_file)
        clip = listed[0]
        frames = lq_tree.frames(clip)
        if not frames:
            raise BenchmarkError(f"data set '{spec.name}': clip '{clip}' has no frames in {spec.lq_root}")
        reader = FrameReader({'type': backend})
        lq, gt = reader.read(spec.lq_root, clip, frames[0]), reader.read(spec.gt_root, clip, frames[0])
        (h, w), (hh, ww) = lq.shape[:2], gt.shape[:2]
        if hh % h or ww % w or hh // h != ww // w:
            raise BenchmarkError(f"data set '{spec.name}': GT {reader.locate(spec.gt_root, clip, frames[0])} is "
                                 f"{hh}x{ww} but LQ {reader.locate(spec.lq_root, clip, frames[0])} is {h}x{w}: "
                                 'not an integer scale (if the LR was made from mod-cropped GT, mod-crop the GT '
                                 'too, or give only GT_ROOT and --degradation to degrade it on the fly)')
        return hh // h

    def __len__(self):
        return self.num_clips

    def __iter__(self):
        for idx in range(self.num_clips):
            item = self.dataset[idx]
            if self.spec.lq_root:
                yield item['clip'], item['frame_names'], item['lq'], tensor_to_frames(item['gt'])
                continue
            gts = [mod_crop(f, self.scale) for f in tensor_to_frames(item['lq'])]
            lrs = [downsample(f, self.scale, self.spec.degradation) for f in gts]
            lq = torch.from_numpy(np.stack([f[..., ::-1] for f in lrs]).transpose(0, 3, 1, 2).copy()).float() / 255.
            yield item['clip'], item['frame_names'], lq, gts
