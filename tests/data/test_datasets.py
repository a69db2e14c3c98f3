"""Frame I/O (clip_io) and the two registered clip datasets, on tiny coordinate-encoded clip trees.

GT pixels encode their position (B = 8*y, G = 8*x) and their frame in R (tag 100*clip + t); LQ is the exact
x4 box-downsample. So any output crop can be traced back to its clip, frame, position and flip/rotation.
"""
import os
import pickle
import random
import re
from os import path as osp

import cv2
import lmdb
import numpy as np
import pytest
import torch

import stdsr  # noqa: F401  (registers the datasets)
from basicsr.data import build_dataset
from basicsr.utils.registry import DATASET_REGISTRY
from stdsr.data.clip_io import (LOADER_KEYS, ClipTree, DataError, FrameReader, list_clip_tree, natural_key,
                                read_lmdb_meta_info, read_video_meta_info)
from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
from stdsr.data.paired_clip_dataset import PairedClipDataset

STEP = 8  # coordinate step of the GT encoding (see conftest.coordinate_frame)


# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------
def roots(cs, backend):
    return (cs.gt_lmdb, cs.lq_lmdb) if backend == 'lmdb' else (cs.gt_root, cs.lq_root)


def train_opt(cs, backend='disk', **overrides):
    gt, lq = roots(cs, backend)
    opt = dict(name='train', type='PairedClipDataset', phase='train', scale=cs.scale, dataroot_gt=gt, dataroot_lq=lq,
               meta_info_file=cs.meta_info, io_backend={'type': backend}, num_frame=3,
               filename_tmpl=cs.filename_tmpl, start_frame=cs.start_frame)
    opt.update(overrides)
    return opt


def val_opt(cs, backend='disk', **overrides):
    gt, lq = roots(cs, backend)
    opt = dict(name='val', type='GenericVideoTestDataset', phase='val', scale=cs.scale, dataroot_gt=gt,
               dataroot_lq=lq, io_backend={'type': backend})
    opt.update(overrides)
    return opt


def to_bgr_uint8(clip_tensor):
    """(N,3,H,W) RGB float -> (N,H,W,3) BGR uint8, to compare with the frames written to disk."""
    return np.round(clip_tensor.numpy().transpose(0, 2, 3, 1)[..., ::-1] * 255).astype(np.uint8)


def undo_dihedral(img, step):
    """Find the flip/transpose that brings a coordinate-encoded crop back upright; returns (flags, upright)."""
    for transpose in (False, True):
        for vflip in (False, True):
            for hflip in (False, True):
                x = img.transpose(1, 0, 2) if transpose else img
                x = x[::-1] if vflip else x
                x = x[:, ::-1] if hflip else x
                b, g = x[..., 0].astype(int), x[..., 1].astype(int)
                if ((np.diff(b, axis=0) == step).all() and (np.diff(b, axis=1) == 0).all()
                        and (np.diff(g, axis=1) == step).all() and (np.diff(g, axis=0) == 0).all()):
                    return (transpose, vflip, hflip), x
    raise AssertionError('crop is not a flip/rotation of an upright coordinate crop')


def trace_sample(cs, item, scale):
    """Check each output GT/LQ frame pair against its source frames.

    Returns per-frame (clip, t), the flip/transpose flags and the GT crop's (top, left), all shared by the frames.
    """
    gts, lqs = to_bgr_uint8(item['gt']), to_bgr_uint8(item['lq'])
    clips = list(cs.gt_frames)
    traced, flags = [], set()
    for gt, lq in zip(gts, lqs):
        gt_flags, gt_up = undo_dihedral(gt, STEP)
        lq_flags, lq_up = undo_dihedral(lq, STEP * scale)
        assert gt_flags == lq_flags, 'GT and LQ of one frame were augmented differently'
        flags.add(gt_flags)
        tag = int(gt_up[0, 0, 2])
        c, t = divmod(tag, 100)
        top, left = int(gt_up[0, 0, 0]) // STEP, int(gt_up[0, 0, 1]) // STEP
        assert top % scale == 0 and left % scale == 0, 'GT crop is off the LQ grid'
        h, w = gt_up.shape[:2]
        src_gt, src_lq = cs.gt_frames[clips[c]][t], cs.lq_frames[clips[c]][t]
        np.testing.assert_array_equal(gt_up, src_gt[top:top + h, left:left + w])
        np.testing.assert_array_equal(
            lq_up, src_lq[top // scale:(top + h) // scale, left // scale:(left + w) // scale])
        traced.append((clips[c], t, top, left))
    assert len(flags) == 1, f'frames of one sample were augmented differently: {flags}'
    corners = {(top, left) for _, _, top, left in traced}
    assert len(corners) == 1, 'frames of one sample were cropped differently'
    return [(clip, t) for clip, t, _, _ in traced], flags.pop(), corners.pop()


# ----------------------------------------------------------------------------------------------------------------------
# clip_io
# ----------------------------------------------------------------------------------------------------------------------
def test_read_video_meta_info_parses_nested_clip_names(tmp_path):
    path = tmp_path / 'meta.txt'
    path.write_text('00001/0001 7 (256,448,3)\n\ncalendar 41 (576, 720, 3)\n')
    assert read_video_meta_info(str(path)) == [('00001/0001', 7, (256, 448, 3)), ('calendar', 41, (576, 720, 3))]


@pytest.mark.parametrize('bad_line',
                         ['calendar six (32,32,3)', 'calendar 6', 'calendar 6 (32,32)', 'calendar 0 (1,1,3)'])
def test_read_video_meta_info_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / 'meta.txt'
    path.write_text(f'city 6 (32,32,3)\n{bad_line}\n')
    with pytest.raises(DataError, match=re.escape(f'{path}:2')):
        read_video_meta_info(str(path))


def test_read_video_meta_info_missing_file_and_duplicates(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / 'nope.txt'))):
        read_video_meta_info(str(tmp_path / 'nope.txt'))
    path = tmp_path / 'dup.txt'
    path.write_text('city 6 (32,32,3)\ncity 6 (32,32,3)\n')
    with pytest.raises(DataError, match=re.escape(f'{path}:2') + ".*'city'"):
        read_video_meta_info(str(path))


def test_list_clip_tree_disk_and_lmdb_agree(clip_set, vimeo_clip_set):
    expected = {clip: [f'{i:08d}' for i in range(6)] for clip in ('calendar', 'city')}
    assert list_clip_tree(clip_set.gt_root) == expected
    assert list_clip_tree(clip_set.lq_lmdb, 'lmdb') == expected
    vimeo = {clip: [f'im{i}' for i in range(1, 8)] for clip in ('00001/0001', '00001/0002')}
    assert list_clip_tree(vimeo_clip_set.lq_root) == vimeo
    assert list_clip_tree(vimeo_clip_set.gt_lmdb, 'lmdb') == vimeo
    assert read_lmdb_meta_info(vimeo_clip_set.gt_lmdb)['00001/0002/im7'] == (32, 32, 3)


def test_natural_sort_orders_unpadded_frame_numbers():
    assert sorted(['im10', 'im2', 'im1'], key=natural_key) == ['im1', 'im2', 'im10']


def test_frame_reader_matches_cv2_and_is_picklable_after_lmdb_use(clip_set):
    expected = cv2.imread(osp.join(clip_set.gt_root, 'city', '00000004.png')).astype(np.float32) / 255.
    disk = FrameReader({'type': 'disk'}).read(clip_set.gt_root, 'city', '00000004')
    reader = FrameReader({'type': 'lmdb'})
    from_lmdb = reader.read(clip_set.gt_lmdb, 'city', '00000004')
    assert disk.dtype == np.float32 and disk.shape == (32, 32, 3)
    np.testing.assert_array_equal(disk, expected)
    np.testing.assert_array_equal(from_lmdb, expected)
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone.read(clip_set.gt_lmdb, 'city', '00000004'), expected)


def test_clip_tree_errors_name_folder_key_and_lmdb(clip_set, tmp_path):
    with pytest.raises(DataError, match=re.escape(osp.join(clip_set.gt_root, 'nope'))):
        ClipTree(clip_set.gt_root, 'disk').frames('nope')
    with pytest.raises(DataError, match=re.escape(f"key 'city/00000009' in lmdb {clip_set.gt_lmdb}")):
        ClipTree(clip_set.gt_lmdb, 'lmdb').require('city', ['00000000', '00000009'])
    with pytest.raises(DataError, match=re.escape(str(tmp_path))):
        ClipTree(str(tmp_path), 'lmdb')  # no data.mdb


# ----------------------------------------------------------------------------------------------------------------------
# PairedClipDataset
# ----------------------------------------------------------------------------------------------------------------------
def test_datasets_are_registered_and_declare_option_keys(clip_set):
    assert DATASET_REGISTRY.get('PairedClipDataset') is PairedClipDataset
    assert DATASET_REGISTRY.get('GenericVideoTestDataset') is GenericVideoTestDataset
    for cls in (PairedClipDataset, GenericVideoTestDataset):
        assert isinstance(cls.OPTION_KEYS, frozenset) and LOADER_KEYS <= cls.OPTION_KEYS
    assert isinstance(build_dataset(train_opt(clip_set)), PairedClipDataset)
    assert isinstance(build_dataset(val_opt(clip_set)), GenericVideoTestDataset)


def test_paired_item_shapes_and_key(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=4, gt_size=16))
    assert len(ds) == 2
    item = ds[1]
    assert item['lq'].shape == (4, 3, 4, 4) and item['gt'].shape == (4, 3, 16, 16)
    assert item['lq'].dtype == torch.float32 and 0 <= item['gt'].min() and item['gt'].max() <= 1
    assert re.fullmatch(r'city/0000000[0-2]', item['key'])


@pytest.mark.parametrize('make_opt', [train_opt, val_opt], ids=['paired', 'test'])
def test_disk_and_lmdb_backends_give_identical_tensors(clip_set, make_opt):
    extra = dict(gt_size=16, use_hflip=True, use_rot=True, random_reverse=True, interval_list=[1, 2]) \
        if make_opt is train_opt else {}
    disk = build_dataset(make_opt(clip_set, 'disk', **extra))
    from_lmdb = build_dataset(make_opt(clip_set, 'lmdb', **extra))
    for seed in range(4):
        for index in range(len(disk)):
            random.seed(seed)
            a = disk[index]
            random.seed(seed)
            b = from_lmdb[index]
            assert a.keys() == b.keys()
            for key in a:
                if torch.is_tensor(a[key]):
                    assert torch.equal(a[key], b[key]), key
                else:
                    assert a[key] == b[key], key


def test_crop_keeps_gt_and_lq_aligned_without_augmentation(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=3, gt_size=12))
    positions = set()
    for seed in range(20):
        random.seed(seed)
        item = ds[seed % 2]
        frames, flags, corner = trace_sample(clip_set, item, clip_set.scale)
        assert flags == (False, False, False)
        assert {clip for clip, _ in frames} == {['calendar', 'city'][seed % 2]}
        positions.add(corner)
    assert len(positions) > 4, f'crop position barely changed: {positions}'


def test_augmentation_is_shared_by_gt_lq_and_all_frames(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=3, gt_size=16, use_hflip=True, use_rot=True))
    seen = set()
    for seed in range(80):
        random.seed(seed)
        flags = trace_sample(clip_set, ds[0], clip_set.scale)[1]  # asserts one flip/rot for all GT+LQ frames
        seen.add(flags)
    assert len(seen) == 8, f'expected all 8 flip/rotation combinations, saw {sorted(seen)}'


def test_hflip_only_never_transposes(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=2, gt_size=16, use_hflip=True))
    seen = set()
    for seed in range(30):
        random.seed(seed)
        seen.add(trace_sample(clip_set, ds[1], clip_set.scale)[1])
    assert seen == {(False, False, False), (False, False, True)}


def test_interval_selects_every_kth_frame_in_order(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=3, interval_list=[2]))
    starts = set()
    for seed in range(20):
        random.seed(seed)
        item = ds[0]
        frames = trace_sample(clip_set, item, clip_set.scale)[0]
        ts = [t for _, t in frames]
        assert ts == [ts[0], ts[0] + 2, ts[0] + 4]
        assert item['key'] == f'calendar/{ts[0]:08d}'
        starts.add(ts[0])
    assert starts == {0, 1}


def test_interval_list_samples_each_interval(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, num_frame=3, interval_list=[1, 2]))
    steps = set()
    for seed in range(30):
        random.seed(seed)
        ts = [t for _, t in trace_sample(clip_set, ds[1], clip_set.scale)[0]]
        steps.add(ts[1] - ts[0])
        assert ts[2] - ts[1] == ts[1] - ts[0]
    assert steps == {1, 2}


def test_random_reverse_flips_time_and_keeps_key_at_lowest_frame(clip_set):
    forward = PairedClipDataset(train_opt(clip_set, num_frame=4))
    ds = PairedClipDataset(train_opt(clip_set, num_frame=4, random_reverse=True))
    orders = set()
    for seed in range(30):
        random.seed(seed)
        item = ds[0]
        ts = [t for _, t in trace_sample(clip_set, item, clip_set.scale)[0]]
        assert sorted(ts) == list(range(min(ts), min(ts) + 4))
        assert item['key'] == f'calendar/{min(ts):08d}'
        orders.add('up' if ts == sorted(ts) else 'down' if ts == sorted(ts, reverse=True) else 'mixed')
    assert orders == {'up', 'down'}
    for seed in range(10):
        random.seed(seed)
        ts = [t for _, t in trace_sample(clip_set, forward[0], clip_set.scale)[0]]
        assert ts == sorted(ts)


def test_vimeo_layout_with_template_and_start_frame(vimeo_clip_set):
    for backend in ('disk', 'lmdb'):
        ds = PairedClipDataset(train_opt(vimeo_clip_set, backend, num_frame=7))
        item = ds[1]
        assert item['key'] == '00001/0002/00000000'
        assert [t for _, t in trace_sample(vimeo_clip_set, item, vimeo_clip_set.scale)[0]] == list(range(7))


def test_paired_dataset_in_a_worker_after_the_parent_opened_the_lmdb(clip_set):
    ds = PairedClipDataset(train_opt(clip_set, 'lmdb', num_frame=2, gt_size=8))
    ds[0]  # the parent now holds the LMDB open; py-lmdb refuses a second open in the forked worker
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)))
    assert batch['gt'].shape == (2, 2, 3, 8, 8) and batch['lq'].shape == (2, 2, 3, 2, 2)
    assert batch['key'][0].startswith('calendar/') and batch['key'][1].startswith('city/')


# ----------------------------------------------------------------------------------------------------------------------
# GenericVideoTestDataset
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_test_dataset_returns_whole_clips_in_order(clip_set, backend):
    ds = GenericVideoTestDataset(val_opt(clip_set, backend))
    assert len(ds) == 2
    for index, clip in enumerate(['calendar', 'city']):
        item = ds[index]
        assert item['clip'] == clip and item['frame_names'] == [f'{i:08d}' for i in range(6)]
        assert item['gt'].shape == (6, 3, 32, 32) and item['lq'].shape == (6, 3, 8, 8)
        np.testing.assert_array_equal(to_bgr_uint8(item['gt']), np.stack(clip_set.gt_frames[clip]))
        np.testing.assert_array_equal(to_bgr_uint8(item['lq']), np.stack(clip_set.lq_frames[clip]))


def test_test_dataset_meta_info_max_frames_and_no_gt(vimeo_clip_set, tmp_path):
    meta = tmp_path / 'meta.txt'
    meta.write_text('00001/0002 7 (32,32,3)\n')
    ds = GenericVideoTestDataset(val_opt(vimeo_clip_set, 'lmdb', meta_info_file=str(meta), max_frames=3))
    assert len(ds) == 1
    item = ds[0]
    assert item['clip'] == '00001/0002' and item['frame_names'] == ['im1', 'im2', 'im3']
    np.testing.assert_array_equal(to_bgr_uint8(item['gt']), np.stack(vimeo_clip_set.gt_frames['00001/0002'][:3]))
    no_gt = GenericVideoTestDataset(val_opt(vimeo_clip_set, dataroot_gt=None, scale=None))
    item = no_gt[0]
    assert 'gt' not in item and item['lq'].shape == (7, 3, 8, 8) and item['clip'] == '00001/0001'


# ----------------------------------------------------------------------------------------------------------------------
# bad input -> DataError naming the culprit
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('cls, make_opt', [(PairedClipDataset, train_opt), (GenericVideoTestDataset, val_opt)])
def test_missing_and_unknown_option_keys(clip_set, cls, make_opt):
    opt = make_opt(clip_set)
    del opt['dataroot_lq']
    with pytest.raises(DataError, match="missing required option key 'dataroot_lq'"):
        cls(opt)
    with pytest.raises(DataError, match="unknown option key 'dataroot_gtt'.*did you mean 'dataroot_gt'"):
        cls(make_opt(clip_set, dataroot_gtt='x'))
    with pytest.raises(DataError, match="'io_backend'"):
        cls(make_opt(clip_set, io_backend={'type': 'hdf5'}))


def test_paired_rejects_bad_option_values(clip_set):
    with pytest.raises(DataError, match="missing required option key 'dataroot_gt'"):
        PairedClipDataset(train_opt(clip_set, dataroot_gt=None))
    with pytest.raises(DataError, match="unknown option key 'num_frames'.*did you mean 'num_frame'"):
        PairedClipDataset(train_opt(clip_set, num_frames=3))
    with pytest.raises(DataError, match="'gt_size' 10 is not a multiple of option 'scale' 4"):
        PairedClipDataset(train_opt(clip_set, gt_size=10))
    with pytest.raises(DataError, match="'interval_list'"):
        PairedClipDataset(train_opt(clip_set, interval_list=[0]))
    with pytest.raises(DataError, match="'filename_tmpl'"):
        PairedClipDataset(train_opt(clip_set, filename_tmpl='{:s}'))
    with pytest.raises(DataError, match="'gt_size' 48 exceeds GT frame"):
        PairedClipDataset(train_opt(clip_set, gt_size=48))[0]


def test_meta_info_missing_or_malformed(clip_set, tmp_path):
    missing = str(tmp_path / 'missing_meta.txt')
    with pytest.raises(DataError, match=re.escape(missing)):
        PairedClipDataset(train_opt(clip_set, meta_info_file=missing))
    bad = tmp_path / 'bad_meta.txt'
    bad.write_text('calendar 6 (32,32,3)\ncity 6 32x32\n')
    with pytest.raises(DataError, match=re.escape(f'{bad}:2')):
        GenericVideoTestDataset(val_opt(clip_set, meta_info_file=str(bad)))


def test_clip_shorter_than_requested_window(clip_set):
    with pytest.raises(DataError, match="clip 'calendar' has 6 frames but num_frame=4 at interval 2 asks for 7"):
        PairedClipDataset(train_opt(clip_set, num_frame=4, interval_list=[1, 2]))


def test_missing_frames_named_at_construction(clip_tools, tmp_path):
    cs = clip_tools.make_clip_set(str(tmp_path))
    meta = tmp_path / 'meta7.txt'
    meta.write_text('calendar 7 (32,32,3)\n')  # one frame more than the trees hold
    with pytest.raises(DataError, match=re.escape(osp.join(cs.gt_root, 'calendar', '00000006.png'))):
        PairedClipDataset(train_opt(cs, meta_info_file=str(meta)))
    with pytest.raises(DataError, match=re.escape(f"key 'calendar/00000006' in lmdb {cs.gt_lmdb}")):
        PairedClipDataset(train_opt(cs, 'lmdb', meta_info_file=str(meta)))
    os.remove(osp.join(cs.lq_root, 'city', '00000002.png'))
    with pytest.raises(DataError, match=re.escape(osp.join(cs.lq_root, 'city', '00000002.png'))):
        PairedClipDataset(train_opt(cs))
    with pytest.raises(DataError, match="clip 'city': GT frames"):
        GenericVideoTestDataset(val_opt(cs))
    pattern = 'says 6 frames but ' + re.escape(osp.join(cs.lq_root, 'city', '*.png')) + ' matches 5'
    with pytest.raises(DataError, match=pattern):
        GenericVideoTestDataset(val_opt(cs, meta_info_file=cs.meta_info))


def test_undecodable_frames_named_on_read(clip_tools, tmp_path):
    cs = clip_tools.make_clip_set(str(tmp_path))
    broken = osp.join(cs.gt_root, 'city', '00000003.png')
    with open(broken, 'wb') as f:
        f.write(b'definitely not a png')
    with pytest.raises(DataError, match=re.escape(broken) + '.*does not decode'):
        PairedClipDataset(train_opt(cs, num_frame=6))[1]
    env = lmdb.open(cs.lq_lmdb, map_size=1 << 26)
    with env.begin(write=True) as txn:
        txn.put(b'calendar/00000001', b'garbage')
    env.close()
    with pytest.raises(DataError, match=re.escape(f"key 'calendar/00000001' in lmdb {cs.lq_lmdb}") + '.*decode'):
        GenericVideoTestDataset(val_opt(cs, 'lmdb'))[0]


def test_gt_not_scale_times_lq_names_both_files(clip_tools, tmp_path):
    cs = clip_tools.make_clip_set(str(tmp_path))
    lq_file = osp.join(cs.lq_root, 'calendar', '00000005.png')
    cv2.imwrite(lq_file, np.zeros((9, 8, 3), np.uint8))
    gt_file = osp.join(cs.gt_root, 'calendar', '00000005.png')
    expected = re.escape(f'GT {gt_file} is 32x32 but LQ {lq_file} is 9x8')
    with pytest.raises(DataError, match=expected):
        PairedClipDataset(train_opt(cs, num_frame=6))[0]
    with pytest.raises(DataError, match=expected):
        GenericVideoTestDataset(val_opt(cs))[0]
    with pytest.raises(DataError, match="missing required option key 'scale'"):
        GenericVideoTestDataset(val_opt(cs, scale=None))
