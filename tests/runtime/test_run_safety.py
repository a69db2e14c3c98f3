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

    from stdsr.tools import compare as cd
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({'runs': [{'opt': TEACHER_OPT, 'label': label}], 'seeds': [0],
                                    'work_dir': str(tmp_path / 'w')}))
    with pytest.raises(cd.CompareError, match=r'label must be a plain folder name'):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    assert not (tmp_path / 'w').exists()
