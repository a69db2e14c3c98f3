"""Shared fixtures: tiny GT/LQ clip trees (folders, LMDBs and meta_info) written under tmp_path."""
import os
import subprocess
import sys
from os import path as osp
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import stdsr  # noqa: F401  (patches torchvision before basicsr is imported)
from e2e_helpers import option_file, save_net, tiny_vsrnet_opt, write_yaml
from basicsr.utils.lmdb_util import make_lmdb_from_imgs


def coordinate_frame(height, width, tag, step=8):
    """uint8 BGR frame whose pixels encode their position (B = step*y, G = step*x) and a per-frame tag in R.

    Box-downsampling it by s gives exact integers when step*(s-1)/2 is integral, so crops can be matched.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([step * ys, step * xs, np.full_like(ys, tag)], axis=-1).astype(np.uint8)


def box_downsample(frame, scale):
    """Mean over scale x scale blocks, rounded to uint8: the LQ counterpart of a GT frame."""
    h, w, c = frame.shape
    blocks = frame.reshape(h // scale, scale, w // scale, scale, c).astype(np.float64)
    return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def write_clip_tree(root, clips, filename_tmpl='{:08d}', start_frame=0):
    """Write ``{clip: [HWC uint8 BGR frames]}`` as ``root/<clip>/<frame>.png``; returns root."""
    for clip, frames in clips.items():
        os.makedirs(osp.join(root, clip), exist_ok=True)
        for i, frame in enumerate(frames):
            cv2.imwrite(osp.join(root, clip, filename_tmpl.format(start_frame + i) + '.png'), frame)
    return str(root)


def write_lmdb(tree_root, lmdb_path):
    """BasicSR LMDB of a clip tree, keys ``<clip>/<frame stem>``; returns lmdb_path."""
    rel_paths = []
    for dirpath, _, filenames in os.walk(tree_root):
        rel_paths += [osp.relpath(osp.join(dirpath, f), tree_root) for f in filenames if f.endswith('.png')]
    rel_paths.sort()
    keys = [osp.splitext(p)[0].replace(os.sep, '/') for p in rel_paths]
    make_lmdb_from_imgs(str(tree_root), str(lmdb_path), rel_paths, keys, map_size=1 << 26)
    return str(lmdb_path)


def write_video_meta_info(path, clips):
    """BasicSR video meta_info ``<clip> <num_frames> (h,w,c)`` for ``{clip: [frames]}``; returns path."""
    with open(path, 'w') as f:
        for clip, frames in clips.items():
            h, w, c = frames[0].shape
            f.write(f'{clip} {len(frames)} ({h},{w},{c})\n')
    return str(path)


def make_clip_set(base, clip_names=('calendar', 'city'), num_frames=6, gt_hw=(32, 32), scale=4,
                  filename_tmpl='{:08d}', start_frame=0):
    """GT coordinate clips + their box-downsampled LQ, as folders, LMDBs and a meta_info file under ``base``.

    Frame t of clip c carries R tag ``100 * c + t`` so tests can tell frames apart.
    """
    gt = {name: [coordinate_frame(*gt_hw, tag=100 * c + t) for t in range(num_frames)]
          for c, name in enumerate(clip_names)}
    lq = {name: [box_downsample(f, scale) for f in frames] for name, frames in gt.items()}
    gt_root = write_clip_tree(osp.join(base, 'GT'), gt, filename_tmpl, start_frame)
    lq_root = write_clip_tree(osp.join(base, 'LQ'), lq, filename_tmpl, start_frame)
    return SimpleNamespace(
        gt_root=gt_root, lq_root=lq_root, scale=scale, gt_frames=gt, lq_frames=lq,
        gt_lmdb=write_lmdb(gt_root, osp.join(base, 'GT.lmdb')), lq_lmdb=write_lmdb(lq_root, osp.join(base, 'LQ.lmdb')),
        meta_info=write_video_meta_info(osp.join(base, 'meta_info.txt'), gt),
        filename_tmpl=filename_tmpl, start_frame=start_frame)


@pytest.fixture(scope='module')
def clip_set(tmp_path_factory):
    """Two 6-frame clips, 32x32 GT / 8x8 LQ (x4), frames ``{:08d}.png``; shared by a module, treat read-only."""
    return make_clip_set(str(tmp_path_factory.mktemp('clips')))


@pytest.fixture(scope='module')
def vimeo_clip_set(tmp_path_factory):
    """Vimeo-90K-like layout: clips ``00001/0001`` etc., frames ``im1.png``..``im7.png``; treat read-only."""
    return make_clip_set(str(tmp_path_factory.mktemp('vimeo')), clip_names=('00001/0001', '00001/0002'),
                         num_frames=7, filename_tmpl='im{:d}', start_frame=1)


@pytest.fixture
def clip_tools():
    """The helpers above, for tests that build their own (e.g. deliberately broken) clip sets under tmp_path."""
    return SimpleNamespace(coordinate_frame=coordinate_frame, box_downsample=box_downsample,
                           write_clip_tree=write_clip_tree, write_lmdb=write_lmdb,
                           write_video_meta_info=write_video_meta_info, make_clip_set=make_clip_set)


# ------------------------------------------------------------------------------------------------------------------
# End-to-end fixtures: a tiny demo data set and tiny-network option overrides for the train/test entry points.
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory):
    """A small demo set made by the project's own generator: 3 train clips x 8 frames, 2 test clips x 5, 64 px."""
    root = tmp_path_factory.mktemp('demo') / 'demo'
    subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'scripts' / 'data_preparation' / 'make_demo_clips.py'), '--root',
        str(root), '--size', '64', '--frames-train', '8', '--frames-test', '5', '--clips-train', '3', '--clips-test',
        '2', '--lmdb'
    ],
                   check=True,
                   capture_output=True)
    return root


@pytest.fixture
def one_thread():
    """Tiny networks on a shared 2-core machine: two contending threads make every step 10-50x slower."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def nets(tmp_path_factory):
    """Two differently seeded tiny VSRNets (one as an option file, one as ckpt + arch options) and a x2 one."""
    root = tmp_path_factory.mktemp('nets')
    net_opt = tiny_vsrnet_opt()
    save_net(root / 'a.pth', net_opt, 0)
    save_net(root / 'b.pth', net_opt, 1, keys=('params', 'params_ema'))
    save_net(root / 'x2.pth', tiny_vsrnet_opt(scale=2), 2)
    save_net(root / 'rf.pth', {'type': 'BenchTemporalRFNet'}, 3)
    return {
        'opt_a': option_file(root / 'a.yml', net_opt, str(root / 'a.pth'), name='A'),
        'ckpt_b': str(root / 'b.pth'),
        'arch': write_yaml(root / 'arch.yml', net_opt),
        'opt_x2': option_file(root / 'x2.yml', tiny_vsrnet_opt(scale=2), str(root / 'x2.pth'), name='X2'),
        'ckpt_rf': str(root / 'rf.pth'),
        'arch_rf': write_yaml(root / 'arch_rf.yml', {'type': 'BenchTemporalRFNet'}),
    }
