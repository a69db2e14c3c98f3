"""Reliability: exact resume after SIGKILL, checkpoint retention and failed saves, NaN handling, corrupt
inputs, mismatched teachers, and K-process == 1-process first-step gradients."""
import os
import shutil
import signal
import subprocess
import sys
import time

import lmdb
import numpy as np
import pytest
import torch

import stdsr  # noqa: F401
import stdsr.engine.training as stdsr_train
from basicsr.data import build_dataset
from basicsr.models import build_model
from e2e_helpers import (DEMO_OPTIONS, REPO_ROOT, build_training_model, first_batch, logged_iters, logged_losses,
                         read_train_log, run_module, tiny_edvr_overrides, tiny_run_overrides)
from stdsr.data.clip_io import DataError
from stdsr.errors import DiskFullError
from stdsr.models.clip_vsr_model import NonFiniteLossError
from stdsr.runtime.checkpoint import CheckpointError, atomic_torch_save, prune_checkpoints
from stdsr.runtime.dist import init_dist_from_options
from stdsr.config.options import OptionError, parse_options

PLAIN_OPT = str(DEMO_OPTIONS / 'train_EDVR_teacher_demo.yml')
STD_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_STD_demo.yml')


def plain_force(demo_root, work, total_iter, name, extra=()):
    return tiny_run_overrides(demo_root, work, total_iter, name) + tiny_edvr_overrides() + [
        'train:scheduler:periods=[1000]', 'val:val_freq=100000'
    ] + list(extra)


@pytest.mark.slow
def test_sigkill_then_auto_resume_logs_the_same_losses(tiny_demo_root, tmp_path):
    total = 24
    extra = ['logger:save_checkpoint_freq=4']
    ref_force = plain_force(tiny_demo_root, tmp_path, total, 'reference', extra)
    run_module('stdsr.train', ['-opt', PLAIN_OPT, '--force_yml', *ref_force], cwd=tmp_path)
    reference = logged_losses(read_train_log(tmp_path / 'experiments' / 'reference'), 'l_pix')
    assert len(reference) == total

    force = plain_force(tiny_demo_root, tmp_path, total, 'killed', extra)
    exp = tmp_path / 'experiments' / 'killed'
    proc = subprocess.Popen([sys.executable, '-m', 'stdsr.train', '-opt', PLAIN_OPT, '--force_yml', *force],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (exp / 'training_states' / '4.state').exists():
        assert proc.poll() is None, 'the run ended before its first checkpoint'
        assert time.time() < deadline, 'no checkpoint within the time limit'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_log = read_train_log(exp)
    assert 'End of training' not in killed_log, 'the run finished before it was killed'
    resumed_from = max(int(p.stem) for p in (exp / 'training_states').glob('*.state'))

    run_module('stdsr.train', ['-opt', PLAIN_OPT, '--auto_resume', '--force_yml', *force], cwd=tmp_path)
    new_log = sorted(exp.glob('train_*.log'))[-1].read_text()
    assert f'iter {resumed_from}.' in new_log
    assert logged_iters(new_log) == list(range(resumed_from + 1, total + 1))
    resumed = logged_losses(new_log, 'l_pix')
    np.testing.assert_allclose(resumed, reference[resumed_from:], rtol=1e-3)


def test_keep_last_checkpoints(tiny_demo_root, tmp_path):
    force = plain_force(tiny_demo_root, tmp_path, 8, 'keep',
                        ['logger:save_checkpoint_freq=2', 'logger:keep_last_checkpoints=2'])
    stdsr_train.train_pipeline(['-opt', PLAIN_OPT, '--force_yml', *force], root_path=str(tmp_path))
    exp = tmp_path / 'experiments' / 'keep'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_6.pth', 'net_g_8.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['6.state', '8.state']


def test_prune_keeps_newest_and_latest(tmp_path):
    models, states = tmp_path / 'models', tmp_path / 'states'
    models.mkdir()
    states.mkdir()
    for it in (5, 10, 15):
        (models / f'net_g_{it}.pth').write_bytes(b'x')
        (states / f'{it}.state').write_bytes(b'x')
    (models / 'net_g_latest.pth').write_bytes(b'x')
    assert prune_checkpoints(str(models), str(states), 1) == [5, 10]
    assert sorted(os.listdir(models)) == ['net_g_15.pth', 'net_g_latest.pth']
    assert os.listdir(states) == ['15.state']


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'net_g_4.pth'
    atomic_torch_save({'params': {'w': torch.ones(2)}}, path)
    before = path.read_bytes()

    def disk_full(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(DiskFullError, match=r'net_g_4\.pth: the disk is full.*No space left on device.*previous '
                                         r'version.* is untouched'):
        atomic_torch_save({'params': {'w': torch.zeros(2)}}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['net_g_4.pth']  # no temporary file left behind


def test_failed_save_during_training_stops_with_the_reason(tiny_demo_root, tmp_path, monkeypatch):
    exp = tmp_path / 'experiments' / 'nosave'
    force = plain_force(tiny_demo_root, tmp_path, 4, 'nosave', ['logger:save_checkpoint_freq=2'])
    real_init_tb_logger = stdsr_train.init_tb_logger

    def block_iteration_4_checkpoint(opt):
        # once the run's folders exist, put a directory where the iteration-4 checkpoint must go: the final
        # rename then fails as it would on an unwritable target
        (exp / 'models' / 'net_g_4.pth' / 'keep').mkdir(parents=True)
        return real_init_tb_logger(opt)

    monkeypatch.setattr(stdsr_train, 'init_tb_logger', block_iteration_4_checkpoint)
    with pytest.raises(CheckpointError, match=r'net_g_4\.pth'):
        stdsr_train.train_pipeline(['-opt', PLAIN_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)['params']
    assert (exp / 'training_states' / '2.state').is_file()
    assert not list((exp / 'models').glob('.*.tmp'))


def build_plain_model(demo_root, work, extra=()):
    model = build_training_model(PLAIN_OPT, plain_force(demo_root, work, 4, 'nan', extra), work)
    return model, first_batch(model)


def test_nan_loss_stops_naming_iteration_and_term(tiny_demo_root, tmp_path):
    model, batch = build_plain_model(tiny_demo_root, tmp_path)
    batch['gt'][0, 0, 0, 0, 0] = float('nan')  # (NaN *inputs* crash torchvision's CPU deform_conv2d)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(batch)
    with pytest.raises(NonFiniteLossError, match=r'iter 7: non-finite loss \(l_pix=nan\)'):
        model.optimize_parameters(7)
    assert all(torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items())


def test_nan_loss_skip_policy_counts_and_leaves_weights(tiny_demo_root, tmp_path):
    model, batch = build_plain_model(tiny_demo_root, tmp_path, ['train:nan_policy=skip'])
    batch['gt'][0, 0, 0, 0, 0] = float('inf')
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert model.log_dict['skipped_steps'] == 1.0
    assert all(torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items())


def test_unknown_nan_policy_is_an_error(tiny_demo_root, tmp_path):
    with pytest.raises(ValueError, match='nan_policy'):
        build_plain_model(tiny_demo_root, tmp_path, ['train:nan_policy=ignore'])


def test_truncated_png_names_the_file(tiny_demo_root, tmp_path):
    root = tmp_path / 'demo'
    shutil.copytree(tiny_demo_root / 'train', root / 'train')
    clip_dir = sorted((root / 'train' / 'BIx4').iterdir())[0]
    frame = clip_dir / '00000000.png'
    data = frame.read_bytes()
    frame.write_bytes(data[:len(data) // 2])
    force = tiny_run_overrides(root, tmp_path, 2, 'trunc') + [
        'datasets:train:num_frame=8', f'datasets:train:meta_info_file={tiny_demo_root}/meta_info_demo_train.txt'
    ]
    opt, _ = parse_options(['-opt', PLAIN_OPT, '--force_yml', *force], is_train=True, root_path=str(tmp_path))
    dataset = build_dataset(opt['datasets']['train'])
    index = [clip for clip, _ in dataset.clips].index(clip_dir.name)
    with pytest.raises(DataError, match=f'{clip_dir.name}.*00000000'):
        dataset[index]  # num_frame = the clip length: frame 0 is always read


def test_corrupt_lmdb_value_names_the_key(tiny_demo_root, tmp_path):
    lmdb_path = tmp_path / 'train_BIx4.lmdb'
    shutil.copytree(tiny_demo_root / 'train_BIx4.lmdb', lmdb_path)
    env = lmdb.open(str(lmdb_path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        key = next(iter(txn.cursor()))[0]
        txn.put(key, b'\x89PNG not really')
    env.close()
    clip = key.decode().split('/')[0]
    meta = tmp_path / 'meta.txt'
    meta.write_text(f'{clip} 8 (64,64,3)\n')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'lmdb') + [
        'datasets:train:io_backend:type=lmdb', f'datasets:train:dataroot_gt={tiny_demo_root}/train_GT.lmdb',
        f'datasets:train:dataroot_lq={lmdb_path}', f'datasets:train:meta_info_file={meta}', 'datasets:train:num_frame=8'
    ]
    opt, _ = parse_options(['-opt', PLAIN_OPT, '--force_yml', *force], is_train=True, root_path=str(tmp_path))
    dataset = build_dataset(opt['datasets']['train'])
    with pytest.raises(DataError, match=key.decode()):
        dataset[0]


def test_teacher_of_another_scale_fails_at_start_up(tiny_demo_root, tmp_path):
    teacher_opt = dict(type='VESPCN', num_frame=5, scale=2, num_feat=8, num_block=1, num_feat_hr=8, num_feat_flow=8,
                       residual=True)
    from basicsr.archs import build_network
    teacher = build_network(dict(teacher_opt))
    ckpt = tmp_path / 'teacher_x2.pth'
    torch.save({'params': teacher.state_dict()}, ckpt)
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'scale') + [
        f'path:pretrain_network_t={ckpt}', 'network_t:scale=2', 'network_t:num_feat=8', 'network_t:num_block=1',
        'network_t:num_feat_hr=8', 'network_t:num_feat_flow=8'
    ]
    opt, _ = parse_options(['-opt', STD_OPT, '--force_yml', *force], is_train=True, root_path=str(tmp_path))
    init_dist_from_options(opt, 'none')
    with pytest.raises(OptionError, match=r"scale mismatch: option 'scale' is 4.*network_t by 2"):
        build_model(opt)


@pytest.mark.slow
@pytest.mark.parametrize('opt_file', [PLAIN_OPT, STD_OPT])
def test_two_gloo_processes_match_one_process_first_step_gradients(tiny_demo_root, tmp_path, opt_file):
    extra = []
    if opt_file == STD_OPT:
        from basicsr.archs import build_network
        from stdsr.config.options import load_yaml
        torch.manual_seed(0)
        teacher = build_network(load_yaml(STD_OPT)['network_t'])
        ckpt = tmp_path / 'teacher.pth'
        torch.save({'params': teacher.state_dict()}, ckpt)
        extra = [f'path:pretrain_network_t={ckpt}']
    else:
        extra = tiny_edvr_overrides()

    def force(batch):
        return tiny_run_overrides(tiny_demo_root, tmp_path, 1, 'grad') + extra + [
            f'datasets:train:batch_size_per_gpu={batch}', 'datasets:train:dataset_enlarge_ratio=8'
        ]

    probe = str(REPO_ROOT / 'tests' / 'ddp_grad_probe.py')
    # this checkout, not the installed one
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / 'tests')]))
    subprocess.run([sys.executable, probe, str(tmp_path / 'one.pt'), '-opt', opt_file, '--force_yml', *force(4)],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    two = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', probe,
        str(tmp_path / 'two.pt'), '-opt', opt_file, '--launcher', 'pytorch', '--force_yml', *force(2)
    ],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    one, two = torch.load(tmp_path / 'one.pt'), torch.load(tmp_path / 'two.pt')
    assert set(one['grads']) == set(two['grads']) and len(one['grads']) > 0
    for name, grad in one['grads'].items():  # equal up to float32 summation order
        torch.testing.assert_close(two['grads'][name], grad, rtol=1e-3, atol=1e-5 * float(grad.abs().max()), msg=name)
    assert one['log']['l_pix'] == pytest.approx(two['log']['l_pix'], rel=1e-5)
