"""Bad input fails before anything is created, renamed or overwritten, with one line naming the file or option.

One test per probe of issue #12: the bad input, what must not happen to existing files, and the one-line message.
A tiny VESPCN run on the tiny demo set (two iterations) is the "previous good run" the probes must not disturb.
"""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

import stdsr  # noqa: F401
import stdsr.test as stdsr_test
import stdsr.train as stdsr_train
from e2e_helpers import DEMO_OPTIONS, REPO_ROOT, load_script, tiny_run_overrides
from stdsr.data.lr_degradation import bi_downsample
from stdsr.data.preparation import lmdb_writer, lr_tree
from stdsr.data.preparation.lr_tree import PreparationError
from stdsr.tools.benchmarking import BenchmarkError
from stdsr.inference.frame_io import InferenceInputError
from stdsr.tools.figures.attention import VisualizationError
from stdsr.utils.cli import UserInputError, run_cli
from stdsr.config.options import OptionError, parse_options
from stdsr.runtime.checkpoint import WeightsError

TEACHER_OPT = str(DEMO_OPTIONS / 'train_VESPCN_teacher_demo.yml')
TEST_OPT = str(REPO_ROOT / 'options' / 'test' / 'STD' / 'demo' / 'test_VESPCN_teacher_demo.yml')
TINY_NET = {'type': 'VESPCN', 'num_frame': 3, 'num_feat': 8, 'num_block': 1, 'num_feat_hr': 8, 'num_feat_flow': 8,
            'residual': True}
TINY_FORCE = [f'network_g:{k}={v}' for k, v in TINY_NET.items() if k != 'type']
benchmark_script = load_script('benchmark')
inference_script = load_script('inference_vsr')
visualize_script = load_script('visualize_attention')
create_lmdb_script = load_script('data_preparation/create_lmdb')


def truncate(path, keep=60):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:keep])


def snapshot(root):
    """{relative path: bytes} of every file under ``root``: what a failed run must leave exactly as it was.

    Log files count by name only: in one test process BasicSR's logger keeps appending to the last log file.
    """
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = None if name.endswith('.log') else open(path, 'rb').read()
    return out


def one_error_line(err, prog):
    """The single ``prog: error: ...`` line of ``err`` (no traceback, no second error line)."""
    assert 'Traceback' not in err, err
    lines = [line for line in err.splitlines() if 'error' in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), err
    return lines[0]


def x2_tree(gt_root, out_root):
    """An LR tree at x2 instead of x4 (a wrong-scale LR set)."""
    for clip in os.listdir(gt_root):
        os.makedirs(out_root / clip)
        for name in os.listdir(gt_root / clip):
            cv2.imwrite(str(out_root / clip / name), bi_downsample(cv2.imread(str(gt_root / clip / name)), 2))
    return out_root


def broken_copy(tree, out_root, first_clip_only=True):
    """A copy of ``tree`` whose first clip's frames are truncated PNGs; returns (root, one broken frame path)."""
    shutil.copytree(tree, out_root)
    clip = sorted(os.listdir(out_root))[0]
    for name in os.listdir(out_root / clip):
        truncate(out_root / clip / name)
    return out_root, out_root / clip / sorted(os.listdir(out_root / clip))[0]


@pytest.fixture(scope='module')
def good_run(tiny_demo_root, tmp_path_factory):
    """A finished two-iteration run and a finished test of it: the previous results nothing may disturb."""
    work = tmp_path_factory.mktemp('probes')
    force = tiny_run_overrides(tiny_demo_root, work, 2, 'probe') + TINY_FORCE + ['logger:save_checkpoint_freq=2']
    stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(work))
    ckpt = work / 'experiments' / 'probe' / 'models' / 'net_g_latest.pth'
    test_force = TINY_FORCE + [f'path:pretrain_network_g={ckpt}', f'path:results_root={work}/results/probe_test',
                               f'datasets:test_1:dataroot_gt={tiny_demo_root}/test/GT',
                               f'datasets:test_1:dataroot_lq={tiny_demo_root}/test/BIx4']
    stdsr_test.test_pipeline(['-opt', TEST_OPT, '--force_yml', *test_force], root_path=str(work))
    arch = work / 'arch.yml'
    arch.write_text(yaml.safe_dump({'network_g': TINY_NET, 'scale': 4}))
    return work, force, test_force, ckpt, arch


# ------------------------------------------------------------------------------------------------------ train/test
@pytest.mark.parametrize('probe', ['gt_size', 'x2_lr', 'truncated_png'])
def test_bad_training_data_keeps_the_previous_run(good_run, tiny_demo_root, tmp_path, capsys, probe):
    work, force, _, _, _ = good_run
    exp = work / 'experiments' / 'probe'
    before = snapshot(exp)
    if probe == 'gt_size':
        extra, expected = ['datasets:train:gt_size=400'], "'gt_size' 400 exceeds GT frame"
    elif probe == 'x2_lr':
        lq = x2_tree(tiny_demo_root / 'train' / 'GT', tmp_path / 'BIx2')
        extra, expected = [f'datasets:train:dataroot_lq={lq}'], 'expected GT = LQ x scale 4'
    else:
        gt, broken = broken_copy(tiny_demo_root / 'train' / 'GT', tmp_path / 'GT')
        extra, expected = [f'datasets:train:dataroot_gt={gt}'], f'{broken.parent}'
    rc = stdsr_train.main(['-opt', TEACHER_OPT, '--force_yml', *force, *extra])
    line = one_error_line(capsys.readouterr().err, 'stdsr.train')
    assert rc == 2 and expected in line and 'datasets.train' in line
    assert snapshot(exp) == before and 'models/net_g_2.pth' in before
    assert sorted(p.name for p in exp.parent.iterdir()) == ['probe'], 'nothing archived'


@pytest.mark.parametrize('probe', ['wrong_checkpoint', 'x2_lr', 'truncated_png'])
def test_bad_test_input_keeps_the_previous_results(good_run, tiny_demo_root, tmp_path, capsys, probe):
    work, _, test_force, _, _ = good_run
    results = work / 'results' / 'probe_test'
    before = snapshot(results)
    if probe == 'wrong_checkpoint':  # the file's full-size network_g against the tiny run's checkpoint
        force = [f for f in test_force if f not in TINY_FORCE]
        expected = 'does not match the network; missing keys: body.4.bias'
    elif probe == 'x2_lr':
        lq = x2_tree(tiny_demo_root / 'test' / 'GT', tmp_path / 'BIx2')
        force, expected = test_force + [f'datasets:test_1:dataroot_lq={lq}'], 'expected GT = LQ x scale 4'
    else:
        gt, broken = broken_copy(tiny_demo_root / 'test' / 'GT', tmp_path / 'GT')
        force, expected = test_force + [f'datasets:test_1:dataroot_gt={gt}'], f'{broken.parent}'
    rc = stdsr_test.main(['-opt', TEST_OPT, '--force_yml', *force])
    line = one_error_line(capsys.readouterr().err, 'stdsr.test')
    assert rc == 2 and expected in line
    assert snapshot(results) == before and 'metrics.md' in before
    assert sorted(p.name for p in results.parent.iterdir()) == ['probe_test'], 'nothing archived'


@pytest.mark.slow
def test_force_yml_typo_is_one_line_blaming_the_flag(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'stdsr.train', '-opt', TEACHER_OPT, '--force_yml',
                           'datasets:train:gt_szie=32'], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != 'STDSR_DEBUG'})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("stdsr.train: error: --force_yml: unknown option 'datasets.train.gt_szie' "
                                   "(did you mean 'gt_size'?)")
    assert not (tmp_path / 'experiments').exists()


def test_a_typo_in_the_file_is_still_blamed_on_the_file(tmp_path):
    bad = tmp_path / 'typo.yml'
    bad.write_text(open(TEACHER_OPT).read().replace('    gt_size: 32', '    gt_szie: 32'))
    with pytest.raises(OptionError, match=rf"^{bad}: unknown option 'datasets.train.gt_szie'"):
        parse_options(['-opt', str(bad), '--force_yml', 'train:total_iter=2'], is_train=True, root_path=str(tmp_path))


def test_debug_env_shows_the_traceback(tmp_path, capsys, monkeypatch):
    argv = ['-opt', TEACHER_OPT, '--force_yml', 'datasets:train:gt_szie=32']
    monkeypatch.setenv('STDSR_DEBUG', '1')
    assert stdsr_train.main(argv) == 2
    err = capsys.readouterr().err
    assert 'Traceback' in err and err.strip().splitlines()[-1].startswith('stdsr.train: error: --force_yml')


@pytest.mark.parametrize('launcher, hint', [('pytorch', 'torchrun --nproc_per_node=N -m stdsr.train'),
                                            ('slurm', 'srun python -m stdsr.train')])
def test_launcher_outside_its_launcher_says_what_to_run(capsys, monkeypatch, launcher, hint):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID'):
        monkeypatch.delenv(name, raising=False)
    assert stdsr_train.main(['-opt', TEACHER_OPT, '--launcher', launcher]) == 2
    line = one_error_line(capsys.readouterr().err, 'stdsr.train')
    assert f'--launcher {launcher} expects' in line and hint in line
    assert f'python -m stdsr.train -opt {TEACHER_OPT}' in line


# ----------------------------------------------------------------------------------------- benchmark / inference
def file_in_the_way(tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    return tmp_path / 'a_file' / 'out'


def test_benchmark_checks_its_output_before_loading_anything(good_run, tiny_demo_root, tmp_path):
    # a missing checkpoint would fail first if models were loaded (let alone evaluated) before the output check
    with pytest.raises(BenchmarkError, match='not a folder'):
        benchmark_script.main(['--ckpt', str(tmp_path / 'missing.pth'), '--arch-opt', str(good_run[4]), '--demo',
                               str(tiny_demo_root), '--output', str(file_in_the_way(tmp_path))])


def test_inference_and_figures_check_their_output_before_loading_anything(good_run, tiny_demo_root, tmp_path):
    clip = tiny_demo_root / 'test' / 'BIx4' / sorted(os.listdir(tiny_demo_root / 'test' / 'BIx4'))[0]
    model = ['--ckpt', str(tmp_path / 'missing.pth'), '--arch-opt', str(good_run[4])]
    with pytest.raises(UserInputError, match='cannot be created: .*a_file is not a folder'):
        inference_script.main(model + ['--input', str(clip), '--output', str(file_in_the_way(tmp_path))])
    with pytest.raises(VisualizationError, match='cannot be created: .*a_file is not a folder'):
        visualize_script.main(model + ['--lq', str(clip), '--output', str(file_in_the_way(tmp_path))])


def test_inference_refuses_a_file_it_cannot_identify_as_video(good_run, tmp_path):
    shutil.copy(REPO_ROOT / 'README.md', tmp_path / 'x.txt')
    with pytest.raises(InferenceInputError, match=r'x.txt is neither a folder of frames nor a video file'):
        inference_script.main(['--ckpt', str(good_run[3]), '--arch-opt', str(good_run[4]), '--input',
                               str(tmp_path / 'x.txt'), '--output', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_inference_says_how_many_frames_a_truncated_video_gave(good_run, tmp_path, capsys):
    writer = cv2.VideoWriter(str(tmp_path / 'full.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 10, (24, 24))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    writer.release()
    data = (tmp_path / 'full.avi').read_bytes()
    (tmp_path / 'cut.avi').write_bytes(data[:len(data) // 2])
    count, _ = inference_script.main(['--ckpt', str(good_run[3]), '--arch-opt', str(good_run[4]), '--input',
                                      str(tmp_path / 'cut.avi'), '--output', str(tmp_path / 'sr'), '--device', 'cpu',
                                      '--no-progress'])
    err = capsys.readouterr().err
    assert 0 < count < 20 and f'ended after {count} of the 20 frames its header announces' in err
    assert len(os.listdir(tmp_path / 'sr')) == count


def test_one_checkpoint_reader_one_error_form(good_run, tiny_demo_root, tmp_path, capsys):
    """stdsr.test and the benchmark report the same mismatched checkpoint the same way."""
    work, _, test_force, ckpt, _ = good_run
    force = [f for f in test_force if f not in TINY_FORCE and 'results_root' not in f]
    assert stdsr_test.main(['-opt', TEST_OPT, '--force_yml', *force, f'path:results_root={tmp_path}/r']) == 2
    test_line = one_error_line(capsys.readouterr().err, 'stdsr.test')
    full_arch = tmp_path / 'full.yml'
    full_arch.write_text(yaml.safe_dump({'network_g': yaml.safe_load(open(TEST_OPT))['network_g'], 'scale': 4}))
    with pytest.raises(WeightsError) as bench_err:
        benchmark_script.main(['--ckpt', str(ckpt), '--arch-opt', str(full_arch), '--demo', str(tiny_demo_root),
                               '--output', str(tmp_path / 'b')])
    shared = 'does not match the network; missing keys: body.4.bias, body.4.weight'
    assert shared in test_line and shared in str(bench_err.value)
    assert not (tmp_path / 'r').exists() and not (tmp_path / 'b').exists()


# ------------------------------------------------------------------------------------------------ data preparation
@pytest.fixture
def clip_tree(tmp_path):
    rng = np.random.default_rng(1)
    for clip in ('a', 'b'):
        os.makedirs(tmp_path / 'GT' / clip)
        for t in range(6):
            cv2.imwrite(str(tmp_path / 'GT' / clip / f'{t:08d}.png'), rng.integers(0, 255, (16, 16, 3), np.uint8))
    return tmp_path / 'GT'


def test_create_lmdb_names_a_corrupt_frame_and_leaves_nothing_behind(clip_tree, tmp_path, capsys):
    good = (clip_tree / 'b' / '00000003.png').read_bytes()
    truncate(clip_tree / 'b' / '00000003.png')
    rc = run_cli('create_lmdb', create_lmdb_script.main, ['folder', '--input', str(clip_tree), '--output',
                                                            str(tmp_path / 'gt.lmdb'), '--no-progress'])
    line = one_error_line(capsys.readouterr().err, 'create_lmdb')
    assert rc == 2 and f"cannot decode image {clip_tree / 'b' / '00000003.png'}" in line
    assert sorted(os.listdir(tmp_path)) == ['GT'], 'no LMDB, complete or partial'
    (clip_tree / 'b' / '00000003.png').write_bytes(good)  # fixed: the rerun has nothing to trip over
    assert len(lmdb_writer.folder_to_lmdb(str(clip_tree), str(tmp_path / 'gt.lmdb'), progress=False)) == 12


def test_create_lmdb_checks_the_meta_info_place_first(clip_tree, tmp_path):
    with pytest.raises(UserInputError, match='--meta-info file'):
        lmdb_writer.folder_to_lmdb(str(clip_tree), str(tmp_path / 'gt.lmdb'),
                                   meta_info=str(file_in_the_way(tmp_path) / 'm.txt'), progress=False)
    assert not (tmp_path / 'gt.lmdb').exists() and not list(tmp_path.glob('.gt.lmdb*'))


def test_create_lmdb_progress_is_one_bar(clip_tree, tmp_path, capsys):
    create_lmdb_script.main(['folder', '--input', str(clip_tree), '--output', str(tmp_path / 'gt.lmdb')])
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"Wrote 12 images to {tmp_path / 'gt.lmdb'}."]
    assert err.count('\n') <= 1 and '12/12' in err


def test_generate_lr_names_a_corrupt_frame_and_leaves_no_partial_tree(clip_tree, tmp_path):
    truncate(clip_tree / 'b' / '00000003.png')
    with pytest.raises(PreparationError, match=f"cannot decode image {clip_tree / 'b' / '00000003.png'}"):
        lr_tree.generate_lr(str(clip_tree), str(tmp_path / 'LR'), progress=False)
    assert sorted(os.listdir(tmp_path)) == ['GT']
