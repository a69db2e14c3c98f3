"""Tests of the LR degradations and the data-preparation scripts (demo clips, generate_lr, create_lmdb)."""
import hashlib
import math
import os
import shutil
import subprocess
import sys
from os import path as osp

import cv2
import lmdb
import numpy as np
import pytest
import torch

import stdsr  # noqa: F401  (must precede basicsr)
from basicsr.data.data_util import duf_downsample
from stdsr.data.lr_degradation import bd_downsample, bi_downsample, downsample, gaussian_kernel_1d, mod_crop
from e2e_helpers import load_script
from stdsr.data.preparation import demo_clips, wheel_videos
from stdsr.data.preparation import lmdb_writer as create_lmdb
from stdsr.data.preparation import lr_tree as gen_lr
from stdsr.data.preparation.lr_tree import PreparationError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPTS = osp.join(REPO, 'scripts', 'data_preparation')




demo = load_script('data_preparation/make_demo_clips')
gen_lr_script = load_script('data_preparation/generate_lr')
create_lmdb_script = load_script('data_preparation/create_lmdb')


def random_img(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def write_tree(root, clips, h=12, w=16):
    """Write ``{clip: num_frames}`` random PNG clips; returns {relative path: image}."""
    imgs = {}
    for ci, (clip, num) in enumerate(clips.items()):
        os.makedirs(osp.join(root, clip), exist_ok=True)
        for i in range(num):
            img = random_img(h, w, seed=100 * ci + i)
            cv2.imwrite(osp.join(root, clip, f'{i:08d}.png'), img)
            imgs[f'{clip}/{i:08d}.png'] = img
    return imgs


def file_digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digests(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            out[osp.relpath(path, root)] = file_digest(path)
    return out


# ----------------------------------------------------------------------------------------------- degradations
def cubic(x):
    x = np.abs(x)
    return np.where(x <= 1, 1.5 * x**3 - 2.5 * x**2 + 1, np.where(x <= 2, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2, 0))


def matlab_resize_axis(x, scale):
    """Independent MATLAB imresize (bicubic, antialiased, 1/scale) along axis 0, symmetric borders."""
    n = x.shape[0]
    out = []
    for i in range(n // scale):
        centre = (i + 0.5) * scale - 0.5
        taps = np.arange(math.floor(centre - 2 * scale) - 1, math.ceil(centre + 2 * scale) + 2)
        weights = cubic((centre - taps) / scale)
        idx = np.where(taps < 0, -taps - 1, np.where(taps >= n, 2 * n - 1 - taps, taps))
        out.append(np.tensordot(weights / weights.sum(), x[idx].astype(np.float64), axes=(0, 0)))
    return np.stack(out)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_bi_matches_independent_matlab_bicubic(scale):
    img = random_img(36, 24, seed=scale)
    out = bi_downsample(img, scale)
    assert out.dtype == np.uint8 and out.shape == (36 // scale, 24 // scale, 3)
    ref = matlab_resize_axis(matlab_resize_axis(img, scale).transpose(1, 0, 2), scale).transpose(1, 0, 2)
    assert np.abs(out - np.clip(ref, 0, 255)).max() <= 0.5 + 1e-3


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('fn', [bi_downsample, bd_downsample])
def test_shapes_mod_crop_and_constant(fn, scale):
    img = random_img(26, 19, seed=1)
    assert fn(img, scale).shape == (26 // scale, 19 // scale, 3)
    assert fn(img[..., 0], scale).shape == (26 // scale, 19 // scale)
    # mod-crop first: the dropped border rows/columns never influence the result
    assert np.array_equal(fn(img, scale), fn(mod_crop(img, scale), scale))
    const = np.full((24, 24, 3), 77, np.uint8)
    assert np.array_equal(fn(const, scale), np.full((24 // scale, 24 // scale, 3), 77, np.uint8))


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_bd_keeps_a_ramp_and_samples_pixel_zero(scale):
    # blurring a linear ramp with a symmetric kernel leaves it unchanged away from the borders, so the
    # interior LR pixel (i, j) must equal the HR value at (i * scale, j * scale): phase 0 on both axes
    yy, xx = np.mgrid[0:48, 0:48]
    img = (10 + 3 * yy + 2 * xx).astype(np.uint8)[..., None]
    out = bd_downsample(img, scale)[..., 0]
    n = 48 // scale
    inner = [i for i in range(n) if 6 <= i * scale <= 47 - 6]
    for i in inner:
        for j in inner:
            assert out[i, j] == 10 + 3 * i * scale + 2 * j * scale


def test_bd_matches_basicsr_duf_downsample_at_x4():
    img = random_img(40, 28, seed=3)
    out = bd_downsample(img, 4).astype(np.float64)
    ref = duf_downsample(torch.from_numpy(img.transpose(2, 0, 1)).double()[None], 13, 4)[0].numpy()
    assert np.abs(out - np.clip(ref.transpose(1, 2, 0), 0, 255)).max() <= 0.5 + 1e-6
    kernel = gaussian_kernel_1d(13, 1.6)
    assert kernel.sum() == pytest.approx(1.0) and np.argmax(kernel) == 6


def test_degradation_rejects_bad_arguments():
    img = random_img(8, 8)
    for bad in (1, 5, 2.0, True, '4'):
        with pytest.raises(ValueError, match='scale'):
            bi_downsample(img, bad)
        with pytest.raises(ValueError, match='scale'):
            bd_downsample(img, bad)
    with pytest.raises(ValueError, match='mode'):
        downsample(img, 4, 'BN')
    with pytest.raises(ValueError, match='uint8'):
        bi_downsample(img.astype(np.float32), 2)
    assert np.array_equal(downsample(img, 2, 'bd'), bd_downsample(img, 2))


# -------------------------------------------------------------------------------------------------- demo clips
DEMO_ARGS = ['--size', '64', '--frames-train', '4', '--frames-test', '3', '--clips-train', '6', '--clips-test', '4']


def read_meta(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


@pytest.fixture(scope='module')
def demo_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('demo')
    roots = {}
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        roots[name] = str(base / name)
        extra = ['--lmdb'] if name == 'a' else []
        demo.main(['--root', roots[name], '--seed', str(seed)] + DEMO_ARGS + extra)
    return roots


def test_demo_layout_counts_and_sizes(demo_roots):
    root = demo_roots['a']
    # (split, photo clips, video clips, frames, photo side); video clips: 4 train, 2 val, 3 test_real by default
    for split, photo_clips, video_clips, frames, side in (('train', 6, 4, 4, 64), ('val', 5, 2, 3, 32),
                                                          ('test', 4, 0, 3, 64), ('test_real', 0, 3, 3, None)):
        meta = read_meta(osp.join(root, f'meta_info_demo_{split}.txt'))
        videos = [m for m in meta if m[0].rsplit('_', 1)[0] in ('bikes', 'bigbuckbunny', 'carphone')]
        assert (len(meta) - len(videos), len(videos)) == (photo_clips, video_clips)
        assert sorted(os.listdir(osp.join(root, split, 'GT'))) == [m[0] for m in meta]
        for clip, num, shape in meta:
            h, w = (144, 176) if clip.startswith('carphone') else (64, 64) if clip in [v[0] for v in videos] else (
                side, side)
            assert int(num) == frames and shape == f'({h},{w},3)'
            for sub, factor in (('GT', 1), ('BIx4', 4)):
                names = sorted(os.listdir(osp.join(root, split, sub, clip)))
                assert names == [f'{i:08d}.png' for i in range(frames)]
                for name in names:
                    assert cv2.imread(osp.join(root, split, sub, clip, name)).shape == (h // factor, w // factor, 3)


@pytest.mark.slow
def test_demo_lr_is_bi_downsample_of_gt(demo_roots):
    root = demo_roots['a']
    for clip in ('astronaut_000', 'astronaut_001', 'retina_000'):
        for i in range(4):
            gt = cv2.imread(osp.join(root, 'train', 'GT', clip, f'{i:08d}.png'))
            lr = cv2.imread(osp.join(root, 'train', 'BIx4', clip, f'{i:08d}.png'))
            assert np.array_equal(lr, bi_downsample(gt, 4))


def test_demo_is_deterministic_per_seed(demo_roots):
    a, b, c = (tree_digests(osp.join(demo_roots[k], 'train')) for k in 'abc')
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if '/GT/' in f'/{k}')


def test_demo_train_and_test_sources_disjoint(demo_roots):
    assert not set(demo_clips.TRAIN_PHOTOS) & set(demo_clips.TEST_PHOTOS)
    sources = {}
    for split in demo_clips.SPLITS:
        meta = read_meta(osp.join(demo_roots['a'], f'meta_info_demo_{split}.txt'))
        sources[split] = {clip.rsplit('_', 1)[0] for clip, _, _ in meta}
    train_videos = {wheel_videos.clip_stem(name) for name, _, _ in wheel_videos.TRAIN_VIDEOS}
    assert sources['train'] == set(demo_clips.TRAIN_PHOTOS) | train_videos  # round-robin uses every source
    assert sources['val'] == set(demo_clips.VAL_PHOTOS) | train_videos
    assert sources['test'] == set(demo_clips.TEST_PHOTOS)
    assert sources['test_real'] == {wheel_videos.clip_stem(wheel_videos.TEST_VIDEO)}
    assert wheel_videos.TEST_VIDEO not in [name for name, _, _ in wheel_videos.TRAIN_VIDEOS]


def test_demo_validation_never_overlaps_training():
    """Photo regions of train and val are disjoint (with the gap); video val frames come after train frames."""
    for name, roi in demo_clips.TRAIN_PHOTOS.items():
        photo = demo_clips.load_photo(name)
        tr, va = demo_clips.photo_region(photo, roi, 'train'), demo_clips.photo_region(photo, roi, 'val')
        apart_x, apart_y = va[0] - tr[2], va[1] - tr[3]
        assert max(apart_x, apart_y) >= demo_clips.VAL_GAP and tr[:2] == demo_clips._roi(photo, roi)[:2]
    for seed in range(3):
        train = wheel_videos.video_plan('train', seed, 6, 20, 160, 4)
        val = wheel_videos.video_plan('val', seed, 4, 10, 160, 4)
        for name, _, _ in wheel_videos.TRAIN_VIDEOS:
            last_train = max(w[0] + w[1] for f, w in train.values() if f == name)
            first_val = min(w[0] for f, w in val.values() if f == name)
            assert first_val - last_train >= wheel_videos.GAP_FRAMES


def test_demo_frames_move_by_small_subpixel_steps(demo_roots):
    root = demo_roots['a']
    for clip in sorted(c for c in os.listdir(osp.join(root, 'train', 'GT')) if c.rsplit('_', 1)[0] in
                       demo_clips.TRAIN_PHOTOS):
        paths = [osp.join(root, 'train', 'GT', clip, f'{i:08d}.png') for i in range(4)]
        frames = [cv2.imread(p, cv2.IMREAD_GRAYSCALE).astype(np.float64) for p in paths]
        for prev, cur in zip(frames, frames[1:]):
            assert not np.array_equal(prev, cur)
            assert np.corrcoef(prev.ravel(), cur.ravel())[0, 1] > 0.5
            (dx, dy), _ = cv2.phaseCorrelate(prev, cur)
            assert math.hypot(dx, dy) < 4


def test_demo_trajectories_stay_inside_photo_and_never_upscale():
    size = 160
    for name, roi in demo_clips.TRAIN_PHOTOS.items():
        photo = demo_clips.load_photo(name)
        x0, y0, x1, y1 = demo_clips._roi(photo, roi)
        for seed in range(5):
            rng = np.random.default_rng(seed)
            traj = None
            while traj is None:
                traj = demo_clips.sample_trajectory(rng, 20, size, (x0, y0, x1, y1))
            centre, scale, angle = traj
            assert np.all(scale >= 1.0 - 1e-12) and np.all(scale <= demo_clips.MAX_ZOOM_OUT * 1.1)
            half = (size - 1) / 2
            for (cx, cy), s, a in zip(centre, scale, angle):
                for u, v in ((-half, -half), (half, -half), (-half, half), (half, half)):
                    x = cx + s * (math.cos(a) * u - math.sin(a) * v)
                    y = cy + s * (math.sin(a) * u + math.cos(a) * v)
                    assert x0 <= x <= x1 - 1 and y0 <= y <= y1 - 1


def test_demo_lmdb_keys(demo_roots):
    env = lmdb.open(osp.join(demo_roots['a'], 'train_BIx4.lmdb'), readonly=True, lock=False)
    with env.begin() as txn:
        keys = sorted(k.decode() for k, _ in txn.cursor())
    env.close()
    meta = read_meta(osp.join(demo_roots['a'], 'meta_info_demo_train.txt'))
    assert keys == sorted(f'{clip}/{i:08d}' for clip, num, _ in meta for i in range(int(num)))


def test_demo_refuses_existing_then_skip_and_overwrite(demo_roots, tmp_path, capsys):
    root = str(tmp_path / 'demo')
    shutil.copytree(demo_roots['b'], root)
    before = tree_digests(root)
    with pytest.raises(SystemExit) as exc:
        demo.main(['--root', root, '--seed', '9'] + DEMO_ARGS)
    assert exc.value.code not in (0, None) and 'overwrite' in str(exc.value.code)
    demo.main(['--root', root, '--seed', '9', '--skip-existing'] + DEMO_ARGS)
    assert 'skipped' in capsys.readouterr().out
    assert tree_digests(root) == before
    # a set made with other options is not "complete": --skip-existing must not accept it
    with pytest.raises(SystemExit):
        demo.main(['--root', root, '--skip-existing'] + DEMO_ARGS[:-1] + ['2'])
    demo.main(['--root', root, '--seed', '6', '--overwrite'] + DEMO_ARGS)
    assert tree_digests(root) == tree_digests(demo_roots['c'])


def test_demo_rejects_bad_size(tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo.main(['--root', str(tmp_path / 'x'), '--size', '62'])
    with pytest.raises(SystemExit):  # larger than every test photo allows
        demo.main(['--root', str(tmp_path / 'x'), '--size', '400'])
    assert 'large enough' in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


# ------------------------------------------------------------------------------------------------- generate_lr
@pytest.mark.parametrize('mode,scale', [('BI', 2), ('BD', 3), ('BI', 4)])
def test_generate_lr_round_trip(tmp_path, mode, scale):
    gt = write_tree(str(tmp_path / 'GT'), {'calendar': 2, 'walk': 3}, h=24, w=18)
    out = str(tmp_path / f'{mode}x{scale}')
    assert gen_lr.generate_lr(str(tmp_path / 'GT'), out, mode, scale, progress=False) == 5
    assert sorted(tree_digests(out)) == sorted(gt)
    for rel, img in gt.items():
        assert np.array_equal(cv2.imread(osp.join(out, rel)), downsample(img, scale, mode))


def test_generate_lr_flat_folder_and_refusals(tmp_path):
    flat = tmp_path / 'flat'
    flat.mkdir()
    img = random_img(16, 16)
    cv2.imwrite(str(flat / 'a.jpg'), img)
    (flat / 'seq' / '0001').mkdir(parents=True)  # deeper trees (Vimeo-90K) are mirrored too
    cv2.imwrite(str(flat / 'seq' / '0001' / 'im1.png'), img)
    out = str(tmp_path / 'out')
    gen_lr.generate_lr(str(flat), out, 'BD', 4, progress=False)
    assert cv2.imread(osp.join(out, 'a.png')).shape == (4, 4, 3)
    assert np.array_equal(cv2.imread(osp.join(out, 'seq', '0001', 'im1.png')), bd_downsample(img, 4))
    with pytest.raises(ValueError, match='inside'):
        gen_lr.generate_lr(str(flat), str(flat / 'LR'), 'BI', 4, progress=False)
    with pytest.raises(PreparationError, match='overwrite'):
        gen_lr.generate_lr(str(flat), out, 'BD', 4, progress=False)
    gen_lr.generate_lr(str(flat), out, 'BI', 2, overwrite=True, progress=False)
    assert cv2.imread(osp.join(out, 'a.png')).shape == (8, 8, 3)
    (flat / 'broken.png').write_bytes(b'not an image')
    with pytest.raises(PreparationError, match='broken.png'):
        gen_lr_script.main(['--input', str(flat), '--output', str(tmp_path / 'out2'), '--no-progress'])
    assert not (tmp_path / 'out2').exists() and not list(tmp_path.glob('.out2*'))


@pytest.mark.slow
def test_generate_lr_cli_subprocess(tmp_path):
    write_tree(str(tmp_path / 'GT'), {'city': 2}, h=8, w=8)
    cmd = [sys.executable, osp.join(SCRIPTS, 'generate_lr.py'), '--input', str(tmp_path / 'GT'), '--output',
           str(tmp_path / 'LR')]
    res = subprocess.run(cmd + ['--mode', 'bd', '--scale', '2'], capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert cv2.imread(str(tmp_path / 'LR' / 'city' / '00000001.png')).shape == (4, 4, 3)
    res = subprocess.run(cmd + ['--scale', '5'], capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode != 0 and 'scale' in res.stderr


# ------------------------------------------------------------------------------------------------- create_lmdb
def read_lmdb(path):
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        items = {k.decode(): cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_UNCHANGED) for k, v in txn.cursor()}
    env.close()
    return items


def test_folder_to_lmdb_contents_and_meta_info(tmp_path):
    imgs = write_tree(str(tmp_path / 'GT'), {'calendar': 3, 'city': 2}, h=10, w=14)
    lmdb_path, meta = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'meta' / 'meta_info.txt')
    keys = create_lmdb.folder_to_lmdb(str(tmp_path / 'GT'), lmdb_path, meta_info=meta)
    stored = read_lmdb(lmdb_path)
    assert sorted(keys) == sorted(stored) == sorted(rel[:-4] for rel in imgs)
    for rel, img in imgs.items():
        assert np.array_equal(stored[rel[:-4]], img)
    with open(osp.join(lmdb_path, 'meta_info.txt')) as f:
        assert f.read().splitlines() == [f'{rel} (10,14,3) 1' for rel in sorted(imgs)]
    with open(meta) as f:
        assert f.read().splitlines() == ['calendar 3 (10,14,3)', 'city 2 (10,14,3)']


def test_folder_to_lmdb_refuses_then_overwrites(tmp_path):
    write_tree(str(tmp_path / 'GT'), {'walk': 2})
    lmdb_path = str(tmp_path / 'gt.lmdb')
    create_lmdb.folder_to_lmdb(str(tmp_path / 'GT'), lmdb_path)
    before = tree_digests(lmdb_path)
    write_tree(str(tmp_path / 'GT'), {'walk': 3})
    with pytest.raises(PreparationError, match='overwrite'):
        create_lmdb.folder_to_lmdb(str(tmp_path / 'GT'), lmdb_path)
    with pytest.raises(PreparationError, match='overwrite'):
        create_lmdb_script.main(['folder', '--input', str(tmp_path / 'GT'), '--output', lmdb_path])
    assert tree_digests(lmdb_path) == before
    create_lmdb_script.main(['folder', '--input', str(tmp_path / 'GT'), '--output', lmdb_path, '--overwrite'])
    assert sorted(read_lmdb(lmdb_path)) == ['walk/00000000', 'walk/00000001', 'walk/00000002']
    with pytest.raises(ValueError, match='.lmdb'):
        create_lmdb.folder_to_lmdb(str(tmp_path / 'GT'), str(tmp_path / 'gt_db'))


def test_create_lmdb_overwrite_on_a_full_disk_is_one_line_and_keeps_the_old_lmdb(tmp_path, monkeypatch):
    """On a full disk LMDB's commit fails with EIO: `lmdb.Error: mdb_txn_commit: Input/output error` was a
    traceback (seen on a 400 KB tmpfs); the old LMDB was kept, and must still be."""
    write_tree(str(tmp_path / 'GT'), {'walk': 2})
    lmdb_path = str(tmp_path / 'gt.lmdb')
    create_lmdb.folder_to_lmdb(str(tmp_path / 'GT'), lmdb_path)
    before = tree_digests(lmdb_path)
    real_open = lmdb.open

    class FullTxn:
        def __init__(self, txn):
            self.txn = txn

        def put(self, key, value):
            return self.txn.put(key, value)

        def commit(self):
            self.txn.abort()
            raise lmdb.Error('mdb_txn_commit: Input/output error')

    class FullEnv:
        def __init__(self, *args, **kwargs):
            self.env = real_open(*args, **kwargs)

        def begin(self, write=False):
            return FullTxn(self.env.begin(write=write))

        def close(self):
            self.env.close()
    monkeypatch.setattr(lmdb, 'open', FullEnv)
    said = rf'cannot write {lmdb_path}: mdb_txn_commit: Input/output error \([\d,]+ MiB free on its disk; '
    with pytest.raises(PreparationError, match=said + r'.*the previous LMDB.* is untouched') as err:
        create_lmdb_script.main(['folder', '--input', str(tmp_path / 'GT'), '--output', lmdb_path, '--overwrite'])
    assert '\n' not in str(err.value)
    assert tree_digests(lmdb_path) == before
    assert sorted(os.listdir(tmp_path)) == ['GT', 'gt.lmdb']  # no partial folder left


def test_vimeo90k_and_reds_modes(tmp_path):
    seq = tmp_path / 'vimeo' / 'sequences'
    for clip in ('00001/0001', '00002/0010'):
        os.makedirs(seq / clip)
        for i in range(1, 8):
            cv2.imwrite(str(seq / clip / f'im{i}.png'), random_img(6, 10, seed=i))
    (tmp_path / 'list.txt').write_text('00001/0001\n00002/0010\n')
    keys = create_lmdb.vimeo90k_to_lmdb(str(tmp_path / 'vimeo'), str(tmp_path / 'v.lmdb'), str(tmp_path / 'list.txt'),
                                        meta_info=str(tmp_path / 'vmeta.txt'))
    assert len(keys) == 14 and '00002/0010/im7' in read_lmdb(str(tmp_path / 'v.lmdb'))
    assert (tmp_path / 'vmeta.txt').read_text().splitlines() == ['00001/0001 7 (6,10,3)', '00002/0010 7 (6,10,3)']
    create_lmdb_script.main(['vimeo90k', '--input', str(seq), '--output', str(tmp_path / 'v4.lmdb'), '--list-file',
                             str(tmp_path / 'list.txt'), '--center-only'])
    assert sorted(read_lmdb(str(tmp_path / 'v4.lmdb'))) == ['00001/0001/im4', '00002/0010/im4']

    reds = tmp_path / 'REDS'
    write_tree(str(reds / 'train_sharp'), {'000': 2, '011': 1}, h=8, w=8)
    write_tree(str(reds / 'train_sharp_bicubic' / 'X4'), {'000': 2, '011': 1}, h=2, w=2)
    create_lmdb_script.main(['reds', '--input', str(reds)])
    assert sorted(read_lmdb(str(reds / 'train_sharp.lmdb'))) == ['000/00000000', '000/00000001', '011/00000000']
    assert read_lmdb(str(reds / 'train_sharp_bicubic.lmdb'))['011/00000000'].shape == (2, 2, 3)


def test_extra_photos_add_training_sources_and_keep_every_other_clip():
    """--extra-photos (the study's larger set) only adds training glides: the demo's clips, val and tests stay."""
    base = DEMO_ARGS + ['--clips-train', str(2 * len(demo_clips.TRAIN_PHOTOS) + 2 * len(demo_clips.EXTRA_TRAIN_PHOTOS))]
    plain, extra = demo.parse_args(base), demo.parse_args(base + ['--extra-photos'])
    assert not set(demo_clips.EXTRA_TRAIN_PHOTOS) & set(demo_clips.TEST_PHOTOS)
    assert 'cat' not in demo_clips.EXTRA_TRAIN_PHOTOS  # skimage's cat is chelsea, a test photo
    for split in ('val', 'test', 'test_real'):
        assert demo_clips.split_plan(split, plain) == demo_clips.split_plan(split, extra), split
    sources = {entry[2][0] for entry in demo_clips.split_plan('train', extra) if entry[1] == 'photo'}
    assert sources == set(demo_clips.TRAIN_PHOTOS) | set(demo_clips.EXTRA_TRAIN_PHOTOS)
    clips_plain, clips_extra = demo_clips.render_split('train', plain), demo_clips.render_split('train', extra)
    shared = set(clips_plain) & set(clips_extra)
    assert {'astronaut_000', 'retina_001', 'bikes_000'} <= shared
    assert all(np.array_equal(np.stack(clips_plain[c]), np.stack(clips_extra[c])) for c in shared)
    grey = np.stack(clips_extra['brick_000'])
    assert grey.shape == (4, 64, 64, 3) and np.array_equal(grey[..., 0], grey[..., 2]) and grey.std() > 5


@pytest.mark.slow
def test_holdout_photos_form_val_sources_and_leave_training_and_val(tmp_path, capsys):
    """--holdout-photos: the named photos feed only the val_sources split (whole-photo glides); training and val
    never see them; the tests stay; a remake without it removes the split; a wrong name is refused up front."""
    base = DEMO_ARGS + ['--extra-photos', '--clips-val', '3']
    held = demo.parse_args(base + ['--holdout-photos', 'camera', 'astronaut', '--clips-val-sources', '3'])
    plain = demo.parse_args(base)
    assert demo_clips.splits(held) == demo_clips.SPLITS + ('val_sources', )
    assert demo_clips.splits(plain) == demo_clips.SPLITS

    def photo_sources(split, args):
        return {entry[2][0] for entry in demo_clips.split_plan(split, args) if entry[1] == 'photo'}

    assert photo_sources('val_sources', held) == {'camera', 'astronaut'}
    assert not photo_sources('train', held) & {'camera', 'astronaut'}
    assert 'astronaut' in photo_sources('val', plain) and 'astronaut' not in photo_sources('val', held)
    many = demo.parse_args(base + ['--clips-train', '13', '--holdout-photos', 'camera', 'astronaut'])
    assert photo_sources('train', many) == set(demo_clips.source_photos(many)) - {'camera', 'astronaut'}
    for split in ('test', 'test_real'):
        assert demo_clips.split_plan(split, held) == demo_clips.split_plan(split, plain), split
    sizes = {entry[4] for entry in demo_clips.split_plan('val_sources', held)}
    assert sizes == {(64, 64)}  # whole-photo glides at the test frame size

    root = str(tmp_path / 'held')
    demo.main(['--root', root, '--holdout-photos', 'camera', 'astronaut', '--clips-val-sources', '3'] + base)
    assert [row[0] for row in read_meta(osp.join(root, 'meta_info_demo_val_sources.txt'))] == [
        'astronaut_000', 'camera_000', 'camera_001']  # round-robin over the held-out photos, in the order given
    frame = cv2.imread(osp.join(root, 'val_sources', 'GT', 'camera_000', '00000000.png'))
    assert frame.shape == (64, 64, 3) and frame.std() > 5
    # the held-out set is not the plain one: --skip-existing must not take it for complete, and a remake without
    # --holdout-photos leaves no stale val_sources split behind
    with pytest.raises(SystemExit):
        demo.main(['--root', root, '--skip-existing'] + base)
    demo.main(['--root', root, '--overwrite'] + base)
    assert not osp.exists(osp.join(root, 'val_sources'))
    assert not osp.exists(osp.join(root, 'meta_info_demo_val_sources.txt'))

    before = tree_digests(root)
    with pytest.raises(SystemExit):
        demo.main(['--root', root, '--overwrite', '--holdout-photos', 'chelsea'] + base)
    assert '--holdout-photos chelsea' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.parse_args(DEMO_ARGS + ['--holdout-photos', *demo_clips.TRAIN_PHOTOS])
    assert 'nothing is left to train on' in capsys.readouterr().err
    assert tree_digests(root) == before
