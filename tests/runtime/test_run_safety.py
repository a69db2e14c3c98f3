"""Issue 22 probes: no run loses another's work (run locks, plain names, value checks, duplicate keys, resume pairs)."""
import os
import subprocess
import sys
import textwrap

import pytest

import stdsr  # noqa: F401
import stdsr.train as stdsr_train
from e2e_helpers import DEMO_OPTIONS, read_train_log, tiny_edvr_overrides, tiny_run_overrides
from stdsr.runtime.checkpoint import CheckpointError
from stdsr.config.options import OptionError, load_yaml
from stdsr.runtime.run_lock import RunLock, RunLockedError, lock_path

TEACHER_OPT = str(DEMO_OPTIONS / 'train_EDVR_teacher_demo.yml')


def _previous_run(tmp_path, name):
    """An existing run folder with a checkpoint that a failed start must leave where it is."""
    models = tmp_path / 'experiments' / name / 'models'
    models.mkdir(parents=True)
    (models / 'net_g_5.pth').write_bytes(b'precious')
    return models / 'net_g_5.pth'


def _train(force, tmp_path):
    return stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))


def test_second_live_run_of_the_same_name_stops_before_renaming(tiny_demo_root, tmp_path):
    precious = _previous_run(tmp_path, 'dup')
    with RunLock(tmp_path / 'experiments' / 'dup', 'experiment folder'):
        with pytest.raises(RunLockedError, match=rf"experiment folder .*dup is in use by pid {os.getpid()}"):
            _train(tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'dup'), tmp_path)
    assert precious.read_bytes() == b'precious'
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir() if not p.name.startswith('.')) == ['dup']


def test_stale_lock_of_a_dead_process_does_not_block(tmp_path):
    folder = tmp_path / 'run'
    code = textwrap.dedent(f"""
        import os
        from stdsr.runtime.run_lock import RunLock
        RunLock({str(folder)!r}).acquire()
        os._exit(9)  # dies holding the lock, without releasing it
    """)
    subprocess.run([sys.executable, '-c', code], check=False)
    assert os.path.isfile(lock_path(folder))  # the file is left behind, the flock is not
    lock = RunLock(folder).acquire()
    lock.release()
    assert not os.path.exists(lock_path(folder))


@pytest.mark.parametrize('name', ['', '../../x'])
def test_run_name_must_be_a_plain_folder_name(tiny_demo_root, tmp_path, name):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'ok') + [f'name={name!r}']
    with pytest.raises(OptionError, match=r"option 'name' must be a plain folder name"):
        _train(force, tmp_path)
    assert not (tmp_path / 'experiments').exists()


def test_duplicate_yaml_key_names_file_key_and_lines(tmp_path):
    path = tmp_path / 'dup.yml'
    path.write_text('name: a\ntrain:\n  total_iter: 10\n  total_iter: 20\n')
    with pytest.raises(OptionError, match=rf"{path}: duplicate option key 'total_iter' on line 4 "
                                          r"\(first given on line 3\)"):
        load_yaml(str(path))


@pytest.mark.parametrize('entry, pattern', [
    ('train:total_iter=abc', r"'train\.total_iter' must be a positive integer, got 'abc'"),
    ('train:total_iter=0', r"'train\.total_iter' must be a positive integer, got 0"),
    ('logger:print_freq=0', r"'logger\.print_freq' must be a positive integer, got 0"),
    ('logger:save_checkpoint_freq=0', r"'logger\.save_checkpoint_freq' must be a positive integer, got 0"),
    ('network_g:num_frame=4', r"'network_g\.num_frame' must be an odd positive integer, got 4"),
    ('train:total_iter=5', r"'train\.total_iter: 5' runs past the end of 'train\.scheduler\.periods: \[2\]'"),
    ('datasets:train:batch_size_per_gpu=100000000', r"'datasets\.train\.batch_size_per_gpu: 100000000' x num_frame 3 "
                                                     r'x gt_size 32\^2 makes a batch of 3,433 GiB'),
    ('manual_seed=4294967296', r"'manual_seed' must be an integer in \[0, 4294966272\), got 4294967296"),
])
def test_bad_option_value_is_one_line_and_archives_nothing(tiny_demo_root, tmp_path, entry, pattern):
    precious = _previous_run(tmp_path, 'vals')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'vals') + [entry]
    with pytest.raises(OptionError, match=pattern) as err:
        _train(force, tmp_path)
    assert '\n' not in str(err.value)
    assert precious.read_bytes() == b'precious'
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir() if not p.name.startswith('.')) == ['vals']


def test_resume_without_newest_network_falls_back_to_the_complete_pair(tiny_demo_root, tmp_path):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 4, 'res') + tiny_edvr_overrides() + [
        'logger:save_checkpoint_freq=2', 'val:val_freq=100'
    ]
    _train(force, tmp_path)
    exp = tmp_path / 'experiments' / 'res'
    (exp / 'models' / 'net_g_4.pth').unlink()
    stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--auto_resume', '--force_yml', *force], root_path=str(tmp_path))
    log = read_train_log(exp)
    assert 'skipped incomplete checkpoints: 4.state' in log
    assert 'Resuming training from epoch' in log and 'iter: 2' in log
    assert (exp / 'models' / 'net_g_4.pth').is_file()  # the resumed run finished and saved iteration 4 again

    for iteration in (2, 4):  # no complete pair left: one line, nothing trained from random weights
        (exp / 'models' / f'net_g_{iteration}.pth').unlink()
    with pytest.raises(CheckpointError, match=r'--auto_resume: no complete checkpoint in .*net_g_4\.pth is missing'):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--auto_resume', '--force_yml', *force],
                                   root_path=str(tmp_path))


@pytest.mark.parametrize('side', ['GT', 'LQ'])
def test_test_set_with_a_clip_on_one_side_only_names_it(tmp_path, side):
    import shutil

    from conftest import make_clip_set
    from stdsr.data.clip_io import DataError
    from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
    cs = make_clip_set(str(tmp_path / 'set'), clip_names=('calendar', 'city', 'walk'), num_frames=2)
    shutil.rmtree(tmp_path / 'set' / side / 'walk')
    opt = dict(name='val', type='GenericVideoTestDataset', phase='val', scale=cs.scale, dataroot_gt=cs.gt_root,
               dataroot_lq=cs.lq_root, io_backend={'type': 'disk'})
    missing = {'GT': r"missing in GT: \['walk'\], missing in LQ: none",
               'LQ': r"missing in GT: none, missing in LQ: \['walk'\]"}[side]
    with pytest.raises(DataError, match=missing):
        GenericVideoTestDataset(opt)
    assert len(GenericVideoTestDataset(dict(opt, meta_info_file=write_meta(tmp_path, cs)))) == 2  # a listed subset


def write_meta(tmp_path, cs):
    from conftest import write_video_meta_info
    return write_video_meta_info(str(tmp_path / 'two.txt'), {k: cs.gt_frames[k] for k in ('calendar', 'city')})


@pytest.mark.parametrize('label', ['', '../../x', '..'])
def test_compare_plan_label_must_be_a_plain_name(tmp_path, label):
    import yaml

    from stdsr.tools import comparison as cd
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({'runs': [{'opt': TEACHER_OPT, 'label': label}], 'seeds': [0],
                                    'work_dir': str(tmp_path / 'w')}))
    with pytest.raises(cd.CompareError, match=r'label must be a plain folder name'):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    assert not (tmp_path / 'w').exists()


# ---------------------------------------------------------------------------------------------------- issue 22, part 2
def test_a_data_error_in_a_loader_worker_is_its_own_one_line(tmp_path, capsys):
    import torch

    from conftest import make_clip_set
    from stdsr.data.clip_io import DataError
    from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
    from stdsr.utils.cli import format_error, run_cli
    cs = make_clip_set(str(tmp_path / 'set'), num_frames=2)
    bad = tmp_path / 'set' / 'LQ' / 'city' / '00000001.png'
    bad.write_bytes(b'not a png')
    dataset = GenericVideoTestDataset(dict(name='val', type='GenericVideoTestDataset', phase='val', scale=cs.scale,
                                           dataroot_gt=cs.gt_root, dataroot_lq=cs.lq_root,
                                           io_backend={'type': 'disk'}))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1)
    with pytest.raises(DataError) as err:
        list(loader)
    assert 'DataLoader worker process 0' in str(err.value)  # torch's wrapping, with the worker's traceback
    own = f'frame {bad} does not decode as an image.'
    assert format_error('stdsr.test', err.value) == f'stdsr.test: error: {own}'

    def main(_):
        list(torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1))
    capsys.readouterr()
    assert run_cli('stdsr.test', main, []) == 2
    assert capsys.readouterr().err == f'stdsr.test: error: {own}\n'


def _not_a_checkpoint(tmp_path, kind):
    import random

    import numpy as np
    import torch
    path = tmp_path / {'text': 'notes.pth', 'state': '4.state', 'truncated': 'net_g_4.pth'}[kind]
    if kind == 'text':
        path.write_text('these are my notes\n')
    elif kind == 'state':  # what the model's save_training_state writes (rng: numpy objects)
        torch.save({'epoch': 0, 'iter': 4, 'optimizers': [{'state': {}, 'param_groups': []}], 'schedulers': [{}],
                    'rng': {'python': random.getstate(), 'numpy': np.random.get_state()}}, path)
    else:
        torch.save({'params': {'w': torch.zeros(64)}}, path)
        path.write_bytes(path.read_bytes()[:200])
    return path


@pytest.mark.parametrize('kind, says', [
    ('text', 'is a text file, not a PyTorch checkpoint'),
    ('state', r'is a training state \(a \.state file: iter, optimizers, schedulers\), not network weights'),
    ('truncated', r'is a truncated PyTorch checkpoint'),
])
def test_a_file_that_is_not_a_checkpoint_is_named_and_said_what_it_is(tmp_path, kind, says):
    from stdsr.runtime.checkpoint import WeightsError, read_weights
    path = _not_a_checkpoint(tmp_path, kind)
    with pytest.raises(WeightsError, match=rf'^option path\.pretrain_network_g {path} {says}') as err:
        read_weights(str(path), what='option path.pretrain_network_g')
    assert '\n' not in str(err.value) and 'load key' not in str(err.value) and 'weights_only' not in str(err.value)


def test_a_training_state_given_as_pretrain_network_stops_training_before_any_folder(tiny_demo_root, tmp_path):
    from stdsr.runtime.checkpoint import WeightsError
    state = _not_a_checkpoint(tmp_path, 'state')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'st') + [f'path:pretrain_network_g={str(state)!r}']
    with pytest.raises(WeightsError, match=rf'pretrain_network_g.* {state} is a training state'):
        _train(force, tmp_path)
    assert not (tmp_path / 'experiments' / 'st').exists()


def _torch_full_disk(obj, f):
    f.write(b'PK half a checkpoint')
    raise RuntimeError('[enforce fail at inline_container.cc:626] . unexpected pos 1216 vs 1110')


def _oserror_full_disk(obj, f):
    import errno
    f.write(b'PK half a checkpoint')
    raise OSError(errno.ENOSPC, 'No space left on device')


@pytest.mark.parametrize('writer', [_torch_full_disk, _oserror_full_disk])
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_old_one(tmp_path, monkeypatch, writer):
    import torch

    from stdsr.errors import DiskFullError
    from stdsr.runtime.checkpoint import atomic_torch_save, read_weights
    path = tmp_path / 'net_g_4.pth'
    atomic_torch_save({'params': {'w': torch.ones(3)}}, str(path))
    monkeypatch.setattr(torch, 'save', writer)
    with pytest.raises(DiskFullError, match=rf'^cannot write {path}: the disk is full \(') as err:
        atomic_torch_save({'params': {'w': torch.zeros(3)}}, str(path))
    assert '\n' not in str(err.value)
    monkeypatch.undo()
    assert torch.equal(read_weights(str(path))[0]['w'], torch.ones(3))  # the previous checkpoint, whole
    assert os.listdir(tmp_path) == ['net_g_4.pth']  # no temporary left


def test_a_full_disk_while_writing_a_report_or_a_folder_is_one_line(tmp_path, monkeypatch):
    import errno

    from stdsr.errors import DiskFullError
    from stdsr.utils.atomic_files import atomic_file, atomic_folder, write_files_together, write_text_atomic
    report = tmp_path / 'metrics.md'
    write_text_atomic(report, 'old\n')
    with pytest.raises(DiskFullError, match=rf'cannot write {report}: the disk is full'):
        with atomic_file(report) as f:
            f.write('new')
            raise OSError(errno.EDQUOT, 'Disk quota exceeded')
    assert report.read_text() == 'old\n'
    lmdb_path = tmp_path / 'x.lmdb'

    class LmdbDiskError(Exception):  # how python-lmdb reports ENOSPC: its own class, the strerror text
        pass
    with pytest.raises(DiskFullError, match=rf'cannot write {lmdb_path}: the disk is full'):
        with atomic_folder(str(lmdb_path)) as tmp:
            open(os.path.join(tmp, 'data.mdb'), 'wb').close()
            raise LmdbDiskError(f'{tmp}: No space left on device')
    real_open = open

    def full_open(path, mode='r', *args, **kwargs):
        if str(path).endswith('.results.csv.partial'):
            raise OSError(errno.ENOSPC, 'No space left on device', str(path))
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr('builtins.open', full_open)
    with pytest.raises(DiskFullError, match=r'cannot write .*results\.csv: the disk is full'):
        write_files_together({'results.md': 'a', 'results.csv': 'b'}, str(tmp_path / 'bench'))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['bench', 'metrics.md'] and os.listdir(tmp_path / 'bench') == []


def test_generate_lr_overwrite_replaces_the_tree_and_a_failure_keeps_the_old_one(tmp_path):
    import cv2
    import numpy as np

    from stdsr.data.preparation.lr_tree import PreparationError, generate_lr
    gt = tmp_path / 'GT' / 'city'
    gt.mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(gt / f'{i:08d}.png'), np.full((16, 16, 3), 40 * i, np.uint8))
    out = tmp_path / 'LR'
    generate_lr(str(tmp_path / 'GT'), str(out), scale=4, progress=False)
    (out / 'city' / '00000099.png').write_bytes(b'a frame of a longer earlier run')
    generate_lr(str(tmp_path / 'GT'), str(out), scale=2, overwrite=True, progress=False)
    assert sorted(os.listdir(out / 'city')) == ['00000000.png', '00000001.png']  # the stale frame is gone
    assert cv2.imread(str(out / 'city' / '00000000.png')).shape == (8, 8, 3)
    (gt / '00000001.png').write_bytes(b'corrupt')
    with pytest.raises(PreparationError, match='00000001.png'):
        generate_lr(str(tmp_path / 'GT'), str(out), scale=4, overwrite=True, progress=False)
    assert cv2.imread(str(out / 'city' / '00000000.png')).shape == (8, 8, 3)  # the x2 tree, intact
    assert sorted(os.listdir(tmp_path)) == ['GT', 'LR']  # no partial tree left


def test_an_inference_folder_output_is_replaced_as_a_whole(tmp_path):
    import numpy as np

    from stdsr.inference.frame_io import FolderSink, InferenceInputError, check_output
    out = tmp_path / 'sr'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(InferenceInputError, match='is not empty; pass --overwrite'):
        check_output(str(out), overwrite=False)  # would be swapped away: refused without --overwrite
    (out / 'f9.png').write_bytes(b'stale frame of an earlier output')
    with pytest.raises(InferenceInputError, match=r'holds files this command did not write \(notes.txt\)'):
        check_output(str(out), overwrite=True)  # issue 33: --overwrite replaces only what inference writes
    (out / 'notes.txt').unlink()
    check_output(str(out), overwrite=True)
    sink = FolderSink(str(out), ['f1'])
    sink.write(np.zeros((4, 4, 3), np.uint8))
    sink.close()
    assert sorted(os.listdir(out)) == ['f1.png']
    failed = FolderSink(str(out), ['g1', 'g2'])
    failed.write(np.zeros((4, 4, 3), np.uint8))
    failed.abort()
    assert sorted(os.listdir(out)) == ['f1.png'] and sorted(os.listdir(tmp_path)) == ['sr']


@pytest.mark.parametrize('side', ['GT', 'LQ'])
def test_a_meta_info_clip_missing_on_one_side_names_the_clips_and_the_side(tmp_path, side):
    import re
    import shutil

    from conftest import make_clip_set
    from stdsr.data.clip_io import DataError
    from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
    from stdsr.data.paired_clip_dataset import PairedClipDataset
    from stdsr.tools.benchmarking.datasets import BenchmarkSet, DatasetSpec
    cs = make_clip_set(str(tmp_path / 'set'), clip_names=('calendar', 'city', 'walk', 'zoo'), num_frames=2)
    for clip in ('walk', 'zoo'):
        shutil.rmtree(tmp_path / 'set' / side / clip)
    missing = {'GT': r"missing in GT: \['walk', 'zoo'\], missing in LQ: none",
               'LQ': r"missing in GT: none, missing in LQ: \['walk', 'zoo'\]"}[side]
    pattern = rf'clips listed in meta_info_file {re.escape(cs.meta_info)} are not all there: {missing}'
    common = dict(scale=cs.scale, dataroot_gt=cs.gt_root, dataroot_lq=cs.lq_root, io_backend={'type': 'disk'},
                  meta_info_file=cs.meta_info)
    with pytest.raises(DataError, match=pattern):
        GenericVideoTestDataset(dict(common, name='val', type='GenericVideoTestDataset', phase='val'))
    with pytest.raises(DataError, match=pattern):
        PairedClipDataset(dict(common, name='train', type='PairedClipDataset', phase='train', num_frame=1))
    with pytest.raises(DataError, match=pattern):
        BenchmarkSet(DatasetSpec('set', cs.gt_root, cs.lq_root, meta_info_file=cs.meta_info))


# ---------------------------------------------------------------------------------------------------- issue 33
def test_an_experiments_root_that_holds_other_runs_is_refused_before_anything_moves(tiny_demo_root, tmp_path):
    """`--force_yml path:experiments_root=experiments` renamed the whole experiments/ folder, teacher included."""
    precious = _previous_run(tmp_path, 'teacher')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'new') + [
        f"path:experiments_root={tmp_path / 'experiments'}"]
    with pytest.raises(OptionError, match=r"option 'path\.experiments_root': .*experiments holds another run "
                                          r"\(.*teacher\)"):
        _train(force, tmp_path)
    force[-1] = f'path:experiments_root={tmp_path}'  # the parent of every run's folder
    with pytest.raises(OptionError, match=r"option 'path\.experiments_root': .* is or contains .*experiments"):
        _train(force, tmp_path)
    assert precious.read_bytes() == b'precious'
    assert not any('archived' in p.name for p in tmp_path.rglob('*'))
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir()) == ['teacher']


def test_a_tilde_in_a_run_root_is_the_home_folder(tmp_path, monkeypatch):
    from stdsr.config.options import resolve_paths
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    opt = resolve_paths({'name': 'r', 'path': {'experiments_root': '~/runs/r'}}, True, str(tmp_path / 'work'))
    assert opt['path']['experiments_root'] == str(tmp_path / 'home' / 'runs' / 'r')
    opt = resolve_paths({'name': 'r', 'path': {'results_root': '~/res/r'}}, False, str(tmp_path / 'work'))
    assert opt['path']['results_root'] == str(tmp_path / 'home' / 'res' / 'r')


@pytest.mark.parametrize('lr', ['1e12'])
def test_a_blown_up_forward_stops_with_the_non_finite_error_not_a_crash(tiny_demo_root, tmp_path, lr):
    """lr 1e9/1e12 made EDVR's deformable convolution read exploded offsets: a segfault (rc 139) at iteration 2."""
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 4, 'boom') + tiny_edvr_overrides() + [
        f'train:optim_g:lr={lr}', 'datasets:train:batch_size_per_gpu=1']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, '-m', 'stdsr.train', '-opt', TEACHER_OPT, '--force_yml', *force],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('stdsr.train: error: iter ') and 'non-finite' in last and 'Traceback' not in proc.stderr


STD_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_STD_demo.yml')


def test_a_resume_with_changed_options_names_them_and_refuses_what_changes_the_training(tiny_demo_root, tmp_path):
    """td.hidden_channels 16 -> 8 ended in a 198-line state_dict traceback; sd.loss_share 0.1 -> 0.5 resumed
    silently with the old lambda; td.form fixed -> paper resumed silently and switched the loss."""
    import torch
    from basicsr.archs import build_network
    torch.manual_seed(0)
    teacher = tmp_path / 'teacher.pth'
    torch.save({'params': build_network(load_yaml(STD_OPT)['network_t']).state_dict()}, teacher)
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'std') + [
        f'path:pretrain_network_t={teacher}', 'logger:save_checkpoint_freq=2', 'val:val_freq=100']
    stdsr_train.train_pipeline(['-opt', STD_OPT, '--force_yml', *force], root_path=str(tmp_path))
    exp = tmp_path / 'experiments' / 'std'
    saved = sorted(p.name for p in exp.rglob('*') if p.is_file())

    def resume(*change):
        stdsr_train.train_pipeline(['-opt', STD_OPT, '--auto_resume', '--force_yml', *force, *change],
                                   root_path=str(tmp_path))

    for change, said in [('distill:losses:td:hidden_channels=8', r'distill\.losses\.td\.hidden_channels 16 -> 8'),
                         ('distill:losses:sd:loss_share=0.5', r'distill\.losses\.sd\.loss_share 0\.1 -> 0\.5'),
                         ('distill:losses:td:form=paper', r"distill\.losses\.td\.form 'fixed' -> 'paper'"),
                         ('train:scheduler:periods=[4]', r'train\.scheduler\.periods \[2\] -> \[4\]')]:
        refused = rf'resume state .*2\.state: options differ from the saved run in what is trained: {said}; '
        with pytest.raises(OptionError, match=refused + r'.*path\.pretrain_network_g: .*net_g_2\.pth') as err:
            resume(change)
        assert '\n' not in str(err.value)
        assert sorted(p.name for p in exp.rglob('*') if p.is_file()) == saved  # nothing written, nothing moved

    resume('logger:print_freq=2')  # not part of the recipe: resumed, the change said in one line
    assert "resuming with options changed since " in read_train_log(exp)
    assert "2.state was saved: logger.print_freq 1 -> 2" in read_train_log(exp)


def test_a_resume_past_total_iter_is_one_line_not_a_mislabelled_validation(tiny_demo_root, tmp_path):
    """A 20-iteration state resumed with total_iter: 10 exited 0 without training and labelled the final validation
    of the iteration-20 model 'iter 10' / 'Best ... @ 10 iter'."""
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 4, 'past') + tiny_edvr_overrides() + [
        'logger:save_checkpoint_freq=4', 'val:val_freq=100']
    _train(force, tmp_path)
    exp = tmp_path / 'experiments' / 'past'
    saved = sorted(p.name for p in exp.rglob('*') if p.is_file())
    force[force.index('train:total_iter=4')] = 'train:total_iter=2'
    with pytest.raises(OptionError, match=r"resume state .*4\.state is at iter 4, past 'train\.total_iter: 2': "
                                          r'nothing is left to train') as err:
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--auto_resume', '--force_yml', *force],
                                   root_path=str(tmp_path))
    assert '\n' not in str(err.value)
    assert sorted(p.name for p in exp.rglob('*') if p.is_file()) == saved
    assert '(iter 2)' not in read_train_log(exp) and '@ 2 iter' not in read_train_log(exp)


def test_an_enlarge_ratio_that_multiplies_past_memory_is_one_line_before_anything_is_allocated(tiny_demo_root,
                                                                                                tmp_path):
    """dataset_enlarge_ratio: 1000000000 tried to allocate 96 GB (a 180-line traceback under a memory limit), after
    the run folder was created."""
    precious = _previous_run(tmp_path, 'big')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'big') + ['datasets:train:dataset_enlarge_ratio=1000000000']
    with pytest.raises(OptionError, match=r"option 'datasets\.train\.dataset_enlarge_ratio': \d+ clips x 1000000000 = "
                                          r'[\d,]+ samples per epoch, more than 100,000,000') as err:
        _train(force, tmp_path)
    assert '\n' not in str(err.value)
    assert precious.read_bytes() == b'precious'
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir() if not p.name.startswith('.')) == ['big']
