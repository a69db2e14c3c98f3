"""The "Your own data" walk-through of datasets/README.md, run as written on real camera clips.

The commands are read from the README's marked block, so the documentation cannot drift from what works. They
run in-process (same argument lists as the shell) in a scratch folder holding ``datasets/own`` made of a few frames
of ``<repo>/../shared/realvideo``; trainings are shrunk to two iterations by ``--force_yml``, and inference
reads the first two frames of the real ``car_traffic_small.mp4``.
"""
import os
import re
import shlex

import cv2
import pytest
import torch

import stdsr  # noqa: F401
import stdsr.engine.testing as stdsr_test
import stdsr.engine.training as stdsr_train
from e2e_helpers import REPO_ROOT, load_script, logged_iters, read_train_log

SHARED = REPO_ROOT.parent / 'shared' / 'realvideo'
TRAIN_CLIPS = {'opencv_vtest': 6, 'realbasicvsr_demo000': 6}  # clip -> first frames used (training reads crops)
TEST_CLIPS = {'basicvsrpp_demo000': 3}  # the smallest clip: validated twice and tested once at full size
SHRINK_TRAIN = ['train:total_iter=2', 'train:scheduler:periods=[2]', 'datasets:train:batch_size_per_gpu=2',
                'datasets:train:dataset_enlarge_ratio=1', 'logger:print_freq=1', 'logger:save_checkpoint_freq=2',
                'datasets:val:max_frames=3']
SHRINK_TEST = ['datasets:test_1:max_frames=3']

pytestmark = pytest.mark.skipif(not (SHARED / 'GT').is_dir() or not (SHARED / 'videos').is_dir(),
                                reason=f'real clips not found at {SHARED} (the shared/realvideo folder next to the '
                                'repository)')


def walkthrough_commands():
    """The shell commands of the README's own-data block, one argument list each."""
    text = (REPO_ROOT / 'datasets' / 'README.md').read_text()
    block = re.search(r'<!-- own-data-walkthrough:begin -->\s*```bash\n(.*?)```', text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.strip().startswith('#')]


def link_frames(src_root, dst_root, clips):
    """``dst_root/<clip>/`` holding links to the first frames of each real clip (no copy of the shared data)."""
    for clip, num in clips.items():
        os.makedirs(dst_root / clip)
        for name in sorted(os.listdir(src_root / clip))[:num]:
            os.symlink(src_root / clip / name, dst_root / clip / name)


def run_command(argv, work):
    """Run one README command in-process: ``python scripts/X.py ...`` or ``python -m stdsr.train|test ...``."""
    assert argv[0] == 'python', argv
    args = [str(REPO_ROOT / a) if a.startswith('options/') else a for a in argv[1:]]
    if args[0] == '-m':
        module, rest = args[1], args[2:]
        if module == 'stdsr.train':
            return stdsr_train.train_pipeline(rest + ['--force_yml', *SHRINK_TRAIN], root_path=str(work))
        assert module == 'stdsr.test', module
        return stdsr_test.test_pipeline(rest + ['--force_yml', *SHRINK_TEST], root_path=str(work))
    script = args[0]
    assert script.startswith('scripts/') and script.endswith('.py'), script
    rest = args[1:]
    if script.endswith('inference_vsr.py'):
        rest = [str(SHARED / 'videos' / 'car_traffic_small.mp4') if a == 'my_video.mp4' else a for a in rest]
        rest += ['--max-frames', '2', '--device', 'cpu', '--no-progress']
    else:
        rest += ['--no-progress']
    return load_script(script[len('scripts/'):-len('.py')]).main(rest)


@pytest.mark.slow
def test_readme_walkthrough_from_frames_to_inference(tmp_path, monkeypatch):
    commands = walkthrough_commands()
    kinds = [c[1] if c[1] != '-m' else c[2] for c in commands]
    assert kinds == ['scripts/data_preparation/generate_lr.py'] * 2 + ['scripts/data_preparation/create_lmdb.py'] * 2 \
        + ['stdsr.train', 'stdsr.train', 'stdsr.test', 'scripts/inference_vsr.py']
    own = tmp_path / 'datasets' / 'own'
    link_frames(SHARED / 'GT', own / 'train' / 'GT', TRAIN_CLIPS)
    link_frames(SHARED / 'GT', own / 'test' / 'GT', TEST_CLIPS)
    monkeypatch.chdir(tmp_path)
    results = [run_command(argv, tmp_path) for argv in commands]

    # LR frames made by the project's BI x4 script, mirrored per clip
    lr = cv2.imread(str(own / 'test' / 'BIx4' / 'basicvsrpp_demo000' / '00000000.png'))
    assert lr.shape == (45, 80, 3)
    assert (own / 'meta_info_own_train.txt').read_text().splitlines() == [
        'opencv_vtest 6 (360,480,3)', 'realbasicvsr_demo000 6 (360,640,3)']
    assert (own / 'train_BIx4.lmdb' / 'data.mdb').is_file() and not list(own.glob('.*partial*'))
    # teacher, then the STD student distilled from it (its log holds the distillation losses)
    teacher = tmp_path / 'experiments' / 'own_VESPCN_teacher_x4'
    student = tmp_path / 'experiments' / 'own_VESPCNS_STD_x4'
    assert logged_iters(read_train_log(teacher)) == [1, 2]
    log = read_train_log(student)
    assert logged_iters(log) == [1, 2] and 'l_sd' in log and 'l_td' in log
    params = torch.load(student / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert params['conv_hr.weight'].shape[0] == 16  # the compact student, not the teacher
    # test: per-clip PSNR of the held-out clip
    metrics = (tmp_path / 'results' / 'own_VESPCNS_STD_x4_test' / 'metrics.md').read_text()
    psnr = float(re.search(r'\| own_test \| basicvsrpp_demo000 \| ([\d.]+) \|', metrics).group(1))
    assert 10 < psnr < 60 and results[6][0]['average']['psnr'] == pytest.approx(psnr, abs=1e-3)
    # inference on the real video file: its first 2 frames, x4
    count, size = results[7]
    assert (count, size) == (2, (1440, 2560))
    cap = cv2.VideoCapture(str(tmp_path / 'results' / 'my_video_sr.mp4'))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 2
