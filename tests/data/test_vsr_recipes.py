"""stdsr.data.preparation.vsr_recipes (and its script) on miniature copies of each download's real layout.

Each recipe must end in exactly what the option files read: the datasets of the zoo training files and of the
benchmark test files are built from the recipe's output with their own options (only the data root moved).
"""
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import pytest

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.data import build_dataset
from e2e_helpers import load_script
from stdsr.data.preparation import vsr_recipes
from stdsr.data.lr_degradation import downsample
from stdsr.config.options import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
recipes = vsr_recipes
cli = load_script('data_preparation/prepare_vsr_datasets')


def write_frames(folder, names, hw=(32, 48), seed=0):
    """Random smooth-ish uint8 BGR frames under ``folder``; returns them in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for name in names:
        img = cv2.GaussianBlur(rng.integers(0, 256, (*hw, 3), dtype=np.uint8), (5, 5), 1.5)
        assert cv2.imwrite(str(folder / name), img)
        frames.append(img)
    return frames


def dataset_from(option_file, phase, out, **overrides):
    """The option file's dataset ``phase`` with its ``datasets/`` paths moved under ``out``."""
    opt = load_yaml(str(REPO_ROOT / option_file))
    ds = deepcopy(opt['datasets'][phase])
    for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
        if isinstance(ds.get(key), str):
            assert ds[key].startswith('datasets/'), (option_file, key)
            ds[key] = str(out / ds[key][len('datasets/'):])
    ds.update(phase=phase.split('_')[0], scale=opt['scale'], **overrides)
    return build_dataset(ds)


def quiet(*_):
    pass


def test_vimeo90k_recipe_feeds_the_training_files(tmp_path):
    raw = tmp_path / 'vimeo_septuplet'
    clips = ['00001/0001', '00001/0002', '00002/0001']
    for k, clip in enumerate(clips):
        write_frames(raw / 'sequences' / clip, [f'im{i}.png' for i in range(1, 8)], seed=k)
    (raw / 'sep_trainlist.txt').write_text('00001/0001\n00002/0001\n')
    (raw / 'sep_testlist.txt').write_text('00001/0002\n')
    out = tmp_path / 'datasets'
    recipes.prepare_vimeo90k(str(raw), str(out), log=quiet)
    assert (out / 'meta_info/meta_info_Vimeo90K_train_GT.txt').read_text().splitlines() == [
        '00001/0001 7 (32,48,3)', '00002/0001 7 (32,48,3)']
    for option_file in ('options/train/STD/zoo/train_VESPCN_STD_x4_Vimeo90K_EDVRL.yml',
                        'options/train/STD/train_EDVRS_STD_x4_Vimeo90K.yml'):
        train = dataset_from(option_file, 'train', out, gt_size=32)
        assert len(train) == 2
        item = train[0]
        assert tuple(item['gt'].shape) == (7, 3, 32, 32) and tuple(item['lq'].shape) == (7, 3, 8, 8)
    gt = cv2.imread(str(raw / 'sequences/00002/0001/im3.png'))
    lr_tree = cv2.imread(str(out / 'Vimeo90K/vimeo_septuplet_BIx4/sequences/00002/0001/im3.png'))
    assert np.array_equal(lr_tree, downsample(gt, 4, 'BI'))  # the LMDB packs exactly these LR frames
    test_t = sorted(p.name for p in (out / 'Vimeo90K-T/GT').iterdir())
    assert test_t == ['00001_0002'] and len(list((out / 'Vimeo90K-T/BIx4/00001_0002').iterdir())) == 7
    with pytest.raises(recipes.RecipeError, match='already exists'):
        recipes.prepare_vimeo90k(str(raw), str(out), log=quiet)


def test_reds_recipe_regroups_val_and_keeps_reds4_out_of_training(tmp_path):
    raw = tmp_path / 'REDS'
    frames = [f'{i:08d}.png' for i in range(8)]
    for split, clips in (('train', ['000', '001', '011', '015', '020']), ('val', ['000'])):
        for k, clip in enumerate(clips):
            write_frames(raw / f'{split}_sharp' / clip, frames, hw=(32, 48), seed=k)
            write_frames(raw / f'{split}_sharp_bicubic/X4' / clip, frames, hw=(8, 12), seed=100 + k)
    out = tmp_path / 'datasets'
    recipes.prepare_reds(str(raw), str(out), log=quiet)
    assert [line.split()[0] for line in (out / 'meta_info/meta_info_REDS_train_GT.txt').read_text().splitlines()] == \
        ['001', '240']  # val 000 renumbered; REDS4 (000 011 015 020) held out
    train = dataset_from('options/train/STD/zoo/train_EDVRS_STD_x4_REDS_EDVRM.yml', 'train', out, gt_size=32)
    assert len(train) == 2 and tuple(train[1]['lq'].shape) == (7, 3, 8, 8)
    test = dataset_from('options/test/STD/benchmarks/test_EDVRM_zoo_x4_REDS4.yml', 'test_1', out)
    assert [test[i]['clip'] for i in range(len(test))] == list(recipes.REDS4)
    assert tuple(test[0]['gt'].shape) == (8, 3, 32, 48)


@pytest.mark.parametrize('name,layout', [
    ('vid4', lambda clip: Path('GT') / clip),            # BasicSR's Vid4: Vid4/GT/<clip>/*.png
    ('spmcs', lambda clip: Path(clip) / 'truth'),        # SPMCS: <clip>/truth/ beside input4/
    ('udm10', lambda clip: Path(clip) / 'truth'),        # UDM10 (PFNL): <clip>/truth/
])
def test_test_set_recipes_feed_the_benchmark_files(tmp_path, name, layout):
    raw = tmp_path / 'raw'
    clips = ['calendar', 'city', 'foliage', 'walk'] if name == 'vid4' else ['clip_a', 'clip_b']
    for k, clip in enumerate(clips):
        write_frames(raw / layout(clip), [f'Frame {i:03d}.png' for i in (1, 2, 10)], hw=(35, 50), seed=k)
        if name == 'spmcs':
            write_frames(raw / clip / 'input4', ['Frame 001.png'], hw=(8, 12))  # official LR: not used
    src = raw / 'GT' if name == 'vid4' else raw
    out = tmp_path / 'datasets'
    recipes.prepare_test_set(name, str(src), str(out), log=quiet)
    folder = recipes.TEST_SETS[name][0]
    first = cv2.imread(str(src / clips[0] / ('' if name == 'vid4' else 'truth') / 'Frame 010.png'))
    gt = cv2.imread(str(out / folder / 'GT' / clips[0] / '00000002.png'))  # natural order: 1, 2, 10
    assert np.array_equal(gt, first[:32, :48])  # mod-cropped to x4
    assert np.array_equal(cv2.imread(str(out / folder / 'BDx4' / clips[0] / '00000002.png')), downsample(gt, 4, 'BD'))
    opt = load_yaml(str(REPO_ROOT / 'options/test/STD/benchmarks/test_EDVRL_zoo_x4_Vimeo90K_BI.yml'))
    phase = next(p for p, d in opt['datasets'].items() if d['name'] == folder)
    test = dataset_from('options/test/STD/benchmarks/test_EDVRL_zoo_x4_Vimeo90K_BI.yml', phase, out)
    assert [test[i]['clip'] for i in range(len(test))] == clips
    assert tuple(test[0]['lq'].shape) == (3, 3, 8, 12)


def test_recipes_fail_in_one_line_on_a_wrong_layout(tmp_path):
    with pytest.raises(SystemExit, match='prepare_vsr_datasets: error: .*sequences not found'):
        cli.main(['vimeo90k', '--input', str(tmp_path), '--output', str(tmp_path / 'o')])
    (tmp_path / 'train_sharp').mkdir()
    with pytest.raises(SystemExit, match='train_sharp_bicubic/X4 not found'):
        cli.main(['reds', '--input', str(tmp_path), '--output', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match='no clip folders with frames'):
        cli.main(['udm10', '--input', str(tmp_path / 'train_sharp'), '--output', str(tmp_path / 'o')])
