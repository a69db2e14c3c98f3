"""End-to-end: ``python -m stdsr.train`` / ``stdsr.test`` on the tiny demo set, on CPU, single and under torchrun."""
import re
from pathlib import Path

import pytest
import torch

import stdsr  # noqa: F401
import stdsr.engine.training as stdsr_train
from e2e_helpers import (DEMO_OPTIONS, logged_iters, read_train_log, run_module, tiny_edvr_overrides,
                         tiny_run_overrides)
from stdsr.data.clip_io import DataError
from stdsr.config.options import OptionError

TEACHER_OPT = str(DEMO_OPTIONS / 'train_EDVR_teacher_demo.yml')


@pytest.fixture(scope='module')
def trained_run(tiny_demo_root, tmp_path_factory):
    """A 20-iteration plain EDVR run (checkpoints every 10) shared by the tests below."""
    work = tmp_path_factory.mktemp('train')
    force = tiny_run_overrides(tiny_demo_root, work, 20, 'plain') + tiny_edvr_overrides() + [
        'logger:save_checkpoint_freq=10', 'val:val_freq=10', 'train:scheduler:periods=[1000]'
    ]
    proc = run_module('stdsr.train', ['-opt', TEACHER_OPT, '--force_yml', *force], cwd=work)
    return work, work / 'experiments' / 'plain', proc


@pytest.mark.slow
def test_run_writes_checkpoints_and_logs_validation_psnr(trained_run):
    _, exp, _ = trained_run
    for name in ('net_g_10.pth', 'net_g_20.pth', 'net_g_latest.pth'):
        ckpt = torch.load(exp / 'models' / name, map_location='cpu', weights_only=True)
        assert set(ckpt) == {'params'} and 'conv_hr.weight' in ckpt['params']
    assert (exp / 'training_states' / '20.state').is_file()
    assert not list(exp.rglob('*.tmp')), 'atomic saves must not leave temporary files'
    log = read_train_log(exp)
    assert logged_iters(log) == list(range(1, 21))
    psnrs = [float(v) for v in re.findall(r'# psnr: ([\d.]+)', log)]
    assert len(psnrs) >= 2 and all(15 < p < 50 for p in psnrs)
    assert 'time (data)' in log and 'eta:' in log and 'l_pix' in log


@pytest.mark.slow
def test_auto_resume_on_cpu_continues_at_iteration_21(trained_run, tiny_demo_root):
    work, exp, _ = trained_run
    resumed = work / 'resumed'
    # a copy of the run so the shared fixture stays as it was
    import shutil
    shutil.copytree(exp, resumed)
    force = tiny_run_overrides(tiny_demo_root, work, 24, 'plain') + tiny_edvr_overrides() + [
        f'path:experiments_root={resumed}', 'logger:save_checkpoint_freq=100', 'val:val_freq=100',
        'train:scheduler:periods=[1000]'  # the schedule (saved in the state) must cover the longer run
    ]
    run_module('stdsr.train', ['-opt', TEACHER_OPT, '--auto_resume', '--force_yml', *force], cwd=work)
    log = read_train_log(resumed)
    assert 'Resuming training from epoch' in log and 'iter 20.' in log
    new_log = sorted(resumed.glob('train_*.log'))[-1].read_text()
    assert logged_iters(new_log) == [21, 22, 23, 24]
    # the resumed net starts from the iteration-20 weights, not from scratch
    w20 = torch.load(exp / 'models' / 'net_g_20.pth', weights_only=True)['params']['conv_last.weight']
    w24 = torch.load(resumed / 'models' / 'net_g_latest.pth', weights_only=True)['params']['conv_last.weight']
    assert (w24 - w20).abs().max() < 0.05


@pytest.mark.slow
def test_stdsr_test_prints_psnr_ssim_table(trained_run, tiny_demo_root, tmp_path):
    _, exp, _ = trained_run
    opt = tmp_path / 'test.yml'
    opt.write_text(f"""
name: tiny_test
model_type: ClipVSRModel
scale: 4
num_gpu: 0
datasets:
  test_1:
    name: demo_test
    type: GenericVideoTestDataset
    dataroot_gt: {tiny_demo_root}/test/GT
    dataroot_lq: {tiny_demo_root}/test/BIx4
    io_backend: {{type: disk}}
network_g: {{type: EDVR, num_feat: 8, num_frame: 5, deformable_groups: 1, num_extract_block: 1,
             num_reconstruct_block: 1, with_tsa: true}}
path: {{pretrain_network_g: {exp}/models/net_g_latest.pth}}
val:
  save_img: true
  metrics:
    psnr: {{type: calculate_psnr, crop_border: 0, test_y_channel: true}}
    ssim: {{type: calculate_ssim, crop_border: 0, test_y_channel: true}}
""")
    proc = run_module('stdsr.test', ['-opt', str(opt)], cwd=tmp_path)
    assert '| dataset | clip | psnr | ssim |' in proc.stdout
    table = (tmp_path / 'results' / 'tiny_test' / 'metrics.md').read_text()
    assert table.count('| demo_test |') == 3  # two clips and the average
    pngs = list((tmp_path / 'results' / 'tiny_test' / 'visualization' / 'demo_test').rglob('*.png'))
    assert len(pngs) == 10


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tiny_demo_root, tmp_path):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 4, 'ddp') + tiny_edvr_overrides() + [
        'logger:save_checkpoint_freq=4', 'val:val_freq=4'
    ]
    run_module('stdsr.train', ['-opt', TEACHER_OPT, '--force_yml', *force], cwd=tmp_path, nproc=2)
    exp = tmp_path / 'experiments' / 'ddp'
    log = read_train_log(exp)
    assert 'world size 2' in log
    assert logged_iters(log) == [1, 2, 3, 4]
    assert '# psnr:' in log
    ckpt = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert not any(k.startswith('module.') for k in ckpt)


def test_unknown_option_fails_before_writing(tiny_demo_root, tmp_path):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'typo') + ['datasets:train:batch_size_per_gpus=3']
    with pytest.raises(OptionError, match=r"datasets\.train.*batch_size_per_gpus.*batch_size_per_gpu"):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert not (tmp_path / 'experiments').exists()


def test_unknown_network_option_names_the_key(tiny_demo_root, tmp_path):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'typo') + ['network_g:num_feats=8']
    with pytest.raises(OptionError, match=r"network_g\.num_feats.*num_feat"):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))


def test_bad_data_fails_before_an_existing_run_is_touched(tiny_demo_root, tmp_path):
    existing = tmp_path / 'experiments' / 'bad'
    (existing / 'models').mkdir(parents=True)
    (existing / 'models' / 'net_g_5.pth').write_bytes(b'precious')
    bad_meta = tmp_path / 'meta.txt'
    bad_meta.write_text('no_such_clip 8 (64,64,3)\n')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'bad') + [f'datasets:train:meta_info_file={bad_meta}']
    with pytest.raises(DataError, match='no_such_clip'):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert (existing / 'models' / 'net_g_5.pth').read_bytes() == b'precious'
    assert [p.name for p in (tmp_path / 'experiments').iterdir()] == ['bad']


def test_num_gpu_without_cuda_is_a_clear_error(tiny_demo_root, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'gpu') + ['num_gpu=1']
    with pytest.raises(OptionError, match="num_gpu: 1.*num_gpu: 0"):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))


def test_lmdb_backend_trains(tiny_demo_root, tmp_path):
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, 'lmdb') + tiny_edvr_overrides() + [
        f'datasets:train:dataroot_gt={tiny_demo_root}/train_GT.lmdb',
        f'datasets:train:dataroot_lq={tiny_demo_root}/train_BIx4.lmdb', 'datasets:train:io_backend:type=lmdb',
        'val:val_freq=100'
    ]
    model = stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert Path(model.opt['path']['models'], 'net_g_latest.pth').is_file()


def test_malformed_force_yml_value_is_an_option_error(tmp_path):
    with pytest.raises(OptionError, match=r"--force_yml 'train:total_iter=\[1, 2'.*not valid YAML"):
        stdsr_train.train_pipeline(['-opt', TEACHER_OPT, '--force_yml', 'train:total_iter=[1, 2'],
                                   root_path=str(tmp_path))
