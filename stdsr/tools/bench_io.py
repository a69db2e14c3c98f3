"""Clips per second read by PairedClipDataset from PNG folders and from LMDBs of the same frames.

Examples::

    python scripts/data_preparation/make_demo_clips.py --root datasets/demo --lmdb
    python scripts/bench_io.py --root datasets/demo
    python scripts/bench_io.py --root datasets/demo --compress-levels 0 1 9 --json io.json

Both backends read the same samples, (clip, per-sample seed) pairs drawn as training draws them
(``ResumableSampler`` + ``SeededSampleDataset``), so crops, flips and frame windows are identical; the script
checks that the tensors are bit-identical before it times anything. Everything runs in this process, one sample
after another (no DataLoader workers), after one untimed pass that warms the OS page cache: the numbers are for a
warm cache, i.e. CPU cost, not disk speed. Backends alternate within every repeat so machine load hits both alike.

A per-frame breakdown separates getting the encoded bytes (file open/read vs LMDB get) from PNG decoding, which
tells whether a faster store can help at all. ``--compress-levels`` packs extra LMDBs at other PNG compression
levels (the LMDB writer's ``compress_level``) in a temporary folder and times them too.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import OrderedDict
from os import path as osp

import cv2
import numpy as np
import torch

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers the datasets)
from stdsr.data.clip_io import DataError
from stdsr.data.paired_clip_dataset import PairedClipDataset
from stdsr.data.preparation.lmdb_writer import folder_to_lmdb
from stdsr.data.resumable_sampler import ResumableSampler, SeededSampleDataset

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def build_parser():
    parser = argparse.ArgumentParser(description='PairedClipDataset read speed: PNG folders vs LMDB.')
    parser.add_argument('--root', default='datasets/demo',
                        help='demo layout: train/GT, train/BIx4, train_GT.lmdb, train_BIx4.lmdb, '
                        'meta_info_demo_train.txt')
    parser.add_argument('--gt', default=None, help='GT PNG tree (default ROOT/train/GT)')
    parser.add_argument('--lq', default=None, help='LQ PNG tree (default ROOT/train/BIx<scale>)')
    parser.add_argument('--gt-lmdb', default=None, help='GT LMDB (default ROOT/train_GT.lmdb)')
    parser.add_argument('--lq-lmdb', default=None, help='LQ LMDB (default ROOT/train_BIx<scale>.lmdb)')
    parser.add_argument('--meta-info', default=None, help='video meta_info (default ROOT/meta_info_demo_train.txt)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--num-frame', type=int, default=5)
    parser.add_argument('--gt-size', type=int, default=32, help='GT crop (0: no crop)')
    parser.add_argument('--samples', type=int, default=64, help='samples (clips) read per repeat')
    parser.add_argument('--repeats', type=int, default=5, help='timed passes per backend (median reported)')
    parser.add_argument('--compress-levels', type=int, nargs='*', default=[],
                        help='also pack and time LMDBs at these PNG compression levels (0-9)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, metavar='OUT', help='write the results as JSON')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    return parser


def resolve_paths(args):
    root = args.root
    paths = OrderedDict(
        gt=args.gt or osp.join(root, 'train', 'GT'),
        lq=args.lq or osp.join(root, 'train', f'BIx{args.scale}'),
        gt_lmdb=args.gt_lmdb or osp.join(root, 'train_GT.lmdb'),
        lq_lmdb=args.lq_lmdb or osp.join(root, f'train_BIx{args.scale}.lmdb'),
        meta_info=args.meta_info or osp.join(root, 'meta_info_demo_train.txt'))
    for key, path in paths.items():
        if not osp.exists(path):
            hint = (' (pack it with scripts/data_preparation/make_demo_clips.py --lmdb or create_lmdb.py folder)'
                    if key.endswith('lmdb') else '')
            raise FileNotFoundError(f'--{key.replace("_", "-")}: {path} does not exist{hint}')
    return paths


def dataset_options(args, gt_root, lq_root, backend):
    """The training dataset options, as the demo option files set them, on one backend."""
    return {
        'name': f'bench_{backend}', 'type': 'PairedClipDataset', 'phase': 'train', 'scale': args.scale,
        'dataroot_gt': gt_root, 'dataroot_lq': lq_root, 'meta_info_file': args.meta_info_path,
        'io_backend': {'type': backend}, 'num_frame': args.num_frame, 'gt_size': args.gt_size or None,
        'interval_list': [1], 'random_reverse': True, 'use_hflip': True, 'use_rot': True
    }


def sample_plan(dataset_len, samples, seed):
    """(index, seed) pairs as the training sampler hands them out, for as many epochs as ``samples`` needs."""
    ratio = -(-samples // dataset_len)  # ceil
    sampler = ResumableSampler(range(dataset_len), ratio=ratio, seed=seed)
    return list(sampler)[:samples]


def read_all(dataset, plan):
    wrapped = SeededSampleDataset(dataset)
    return [wrapped[item] for item in plan]


def check_identical(reference, other, label):
    """Every sample must match the PNG-folder read bit for bit; anything else makes the timing meaningless."""
    for i, (a, b) in enumerate(zip(reference, other)):
        if a['key'] != b['key'] or not (torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])):
            raise DataError(f"{label}: sample {i} ({a['key']}) differs from the PNG-folder read")
    return True


def time_pass(dataset, plan):
    start = time.perf_counter()
    read_all(dataset, plan)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- breakdown
def frame_breakdown(reader, root, frames):
    """Median microseconds per frame to get the encoded bytes, to decode them and to turn the whole decoded frame
    into float32 (as ``FrameReader.read`` does, before any crop), and the mean encoded size."""
    read_us, decode_us, float_us, sizes = [], [], [], []
    for clip, frame in frames:
        start = time.perf_counter()
        content = reader.read_bytes(root, clip, frame)
        mid = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
        end = time.perf_counter()
        if img is None:
            raise DataError(f'frame {reader.locate(root, clip, frame)} does not decode')
        img.astype(np.float32) / 255.
        read_us.append(1e6 * (mid - start))
        decode_us.append(1e6 * (end - mid))
        float_us.append(1e6 * (time.perf_counter() - end))
        sizes.append(len(content))
    return OrderedDict(read_us=statistics.median(read_us), decode_us=statistics.median(decode_us),
                       to_float_us=statistics.median(float_us), mean_bytes=statistics.fmean(sizes),
                       frames=len(frames))


def plan_frames(dataset, limit=200):
    """(clip, frame) pairs of the data set's first frames, for the per-frame breakdown."""
    frames = [(clip, stem) for clip, stems in dataset.clips for stem in stems]
    return frames[:limit]


def pack_lmdbs(paths, level, folder):
    """GT and LQ LMDBs of the PNG trees at PNG compression ``level`` under ``folder`` (basicsr's prints muted)."""
    out = {}
    for key in ('gt', 'lq'):
        target = osp.join(folder, f'{key}_c{level}.lmdb')
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            folder_to_lmdb(paths[key], target, compress_level=level, progress=False)
        out[key] = target
    return out


# ------------------------------------------------------------------------------------------------------ main
def bench(args):
    paths = resolve_paths(args)
    args.meta_info_path = paths['meta_info']
    variants = OrderedDict()
    variants['png_folders'] = PairedClipDataset(dataset_options(args, paths['gt'], paths['lq'], 'disk'))
    variants['lmdb'] = PairedClipDataset(dataset_options(args, paths['gt_lmdb'], paths['lq_lmdb'], 'lmdb'))
    tmp = tempfile.mkdtemp(prefix='bench_io_') if args.compress_levels else None
    try:
        for level in args.compress_levels:
            if not 0 <= level <= 9:
                raise ValueError(f'--compress-levels: {level} is not a PNG compression level (0-9)')
            packed = pack_lmdbs(paths, level, tmp)
            variants[f'lmdb_c{level}'] = PairedClipDataset(dataset_options(args, packed['gt'], packed['lq'], 'lmdb'))
        return run_bench(args, paths, variants)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_bench(args, paths, variants):
    reference = variants['png_folders']
    plan = sample_plan(len(reference), args.samples, args.seed)
    warm = {name: read_all(dataset, plan) for name, dataset in variants.items()}  # warms the page cache
    identical = {name: check_identical(warm['png_folders'], samples, name) for name, samples in warm.items()}
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, dataset in variants.items():
            times[name].append(time_pass(dataset, plan))
    results = OrderedDict()
    for name, dataset in variants.items():
        median = statistics.median(times[name])
        gt_root, lq_root = dataset.gt_root, dataset.lq_root
        frames = plan_frames(dataset)
        results[name] = OrderedDict(
            clips_per_s=len(plan) / median, median_s=median, all_s=times[name], identical=identical[name],
            gt_root=gt_root, lq_root=lq_root,
            gt_frame=frame_breakdown(dataset.reader, gt_root, frames),
            lq_frame=frame_breakdown(dataset.reader, lq_root, frames))
    base = results['png_folders']['clips_per_s']
    for entry in results.values():
        entry['speedup_vs_png_folders'] = entry['clips_per_s'] / base
    return OrderedDict(
        samples=len(plan), repeats=args.repeats, num_frame=args.num_frame, gt_size=args.gt_size, scale=args.scale,
        threads=torch.get_num_threads(), cv2_threads=cv2.getNumThreads(), cpu_count=os.cpu_count(),
        load_average=list(os.getloadavg()), cache='warm (one untimed pass per backend first)',
        process='single process, no DataLoader workers', paths=paths, results=results)


def format_bench(report):
    lines = [
        f"{report['samples']} samples x {report['repeats']} repeats, num_frame {report['num_frame']}, gt_size "
        f"{report['gt_size']}, x{report['scale']}; {report['process']}; page cache {report['cache']}; load average "
        f"{report['load_average'][0]:.2f}", '',
        f"{'backend':<14}{'clips/s':>9}{'x PNG':>7}{'identical':>10}   per GT frame: read + decode + float us "
        '(bytes)   per LQ frame: read + decode + float us (bytes)'
    ]
    for name, r in report['results'].items():
        gt, lq = r['gt_frame'], r['lq_frame']
        lines.append(f"{name:<14}{r['clips_per_s']:9.1f}{r['speedup_vs_png_folders']:7.2f}{str(r['identical']):>10}   "
                     f"{gt['read_us']:5.1f} + {gt['decode_us']:6.1f} + {gt['to_float_us']:5.1f} "
                     f"({gt['mean_bytes']:6.0f})          "
                     f"{lq['read_us']:5.1f} + {lq['decode_us']:6.1f} + {lq['to_float_us']:5.1f} "
                     f"({lq['mean_bytes']:6.0f})")
    return '\n'.join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.samples < 1 or args.repeats < 1:
        raise SystemExit('error: --samples and --repeats must be >= 1')
    if args.json and osp.exists(args.json) and not args.overwrite:
        raise SystemExit(f'error: {args.json} exists; pass --overwrite to replace it')
    try:
        report = bench(args)
    except (FileNotFoundError, DataError, ValueError) as err:
        raise SystemExit(f'error: {err}') from None
    print(format_bench(report))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'\nwrote {args.json}')
    return report
