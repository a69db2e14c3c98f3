"""The demo driver: its summary table (from benchmark.py's report, no model lost or mislabelled), the live
progress line of a training step, the failure tail and the step log written as it goes (on synthetic logs)."""
import os
import signal
import sys
from types import SimpleNamespace

import pytest
import yaml

from e2e_helpers import REPO_ROOT, load_script
from stdsr.errors import DemoError

run_demo = load_script('run_demo')


def report(psnrs):
    models = [{'label': label, 'params': 1000 * (i + 1)} for i, label in enumerate(psnrs)]
    results = {
        label: {'demo': {'average': {'psnr': p, 'ssim': p / 40, 'tof': 0.5}, 'runtime_ms_per_frame': 2.0 + i}}
        for i, (label, p) in enumerate(psnrs.items())
    }
    return {'models': models, 'results': results}


def test_summary_rows_and_gap_closed():
    psnrs = {'bicubic': 27.0, 'teacher': 29.0, 'baseline student': 28.0, 'STD student': 28.5}
    text = run_demo.format_summary(report(psnrs), 'demo', 120)
    rows = [line for line in text.splitlines() if line.startswith('| ') and 'model' not in line]
    assert [r.split('|')[1].strip() for r in rows] == list(psnrs)
    assert '| STD student | 4,000 | 28.5000 | 0.7125 | 0.5000 | 5.0 |' in text
    assert 'STD - baseline: +0.5000 dB, 50% of the teacher-student gap' in text
    assert 'Total demo time: 2.0 min.' in text


def test_summary_says_when_there_is_no_gap_to_close():
    psnrs = {'teacher': 28.0, 'baseline student': 28.2, 'STD student': 28.1}
    text = run_demo.format_summary(report(psnrs), 'demo', 60)
    assert 'STD - baseline: -0.1000 dB' in text and 'no gap to close' in text


def test_summary_has_a_table_per_test_set():
    psnrs = {'bicubic': 27.0, 'teacher': 29.0, 'baseline student': 28.0, 'STD student': 28.5}
    rep = report(psnrs)
    for label, p in zip(psnrs, (25.0, 27.0, 26.0, 26.25)):
        rep['results'][label]['demo_real'] = {'average': {'psnr': p, 'ssim': 0.7, 'tof': None},
                                              'runtime_ms_per_frame': 1.0}
    text = run_demo.format_summary(rep, ['demo', 'demo_real'], 60)
    assert '## Held-out demo test clips' in text and '## Real-motion test clips' in text
    assert '| STD student | 4,000 | 26.2500 | 0.7000 | - | 1.0 |' in text
    assert text.count('STD - baseline:') == 2 and 'STD - baseline: +0.2500 dB, 25% of the teacher-student gap' in text


def test_training_steps_ask_for_one_device_when_several_are_visible(monkeypatch, tmp_path):
    import torch
    for count, extra in ((0, []), (1, []), (4, ['--force_yml', 'num_gpu=1'])):
        monkeypatch.setattr(torch.cuda, 'device_count', lambda count=count: count)
        cmd = run_demo.train_command('train_VESPCN_teacher_demo.yml', str(tmp_path / 'fresh'))
        assert cmd[1:] == ['-m', 'stdsr.train', '-opt', 'options/train/STD/demo/train_VESPCN_teacher_demo.yml'] + extra
    (tmp_path / 'interrupted' / 'training_states').mkdir(parents=True)
    cmd = run_demo.train_command('train_VESPCN_teacher_demo.yml', str(tmp_path / 'interrupted'))
    assert cmd[-3:] == ['--auto_resume', '--force_yml', 'num_gpu=1']  # an option of stdsr.train, not of --force_yml


# ------------------------------------------------------------------------------------------------- live progress
def basicsr_training_line(it, total, losses):
    """A training line as BasicSR's own MessageLogger writes it (so a change of its format shows up here)."""
    from basicsr.utils import MessageLogger
    opt = {'name': 'demo_VESPCN_teacher_x4', 'logger': {'print_freq': 100, 'use_tb_logger': False},
           'train': {'total_iter': total}}
    messages = []
    message_logger = MessageLogger(opt, start_iter=1)
    message_logger.logger = SimpleNamespace(info=messages.append)
    message_logger({'epoch': 1, 'iter': it, 'lrs': [1e-3], 'time': 0.5, 'data_time': 0.01, **losses})
    (message, ) = messages
    return f'2026-12-04 10:00:00,000 INFO: {message}\n'


def test_progress_line_shows_iteration_losses_speed_and_eta():
    line = basicsr_training_line(300, 2000, {'l_pix': 0.0123, 'l_sd': 2.5e-4})
    shown = run_demo.progress_line('teacher', line, 2000)
    assert shown.startswith('    teacher: iter 300/2,000 (15%), l_pix 1.230e-02, l_sd 2.500e-04, 0.50 s/iter, ETA ')
    assert 'on {} CPUs'.format(os.cpu_count()) in shown and len(shown) < 160
    assert run_demo.progress_line('teacher', line).startswith('    teacher: iter 300, l_pix')  # total unknown


def test_progress_line_ignores_other_lines():
    for line in ('2026-12-04 10:00:00,000 INFO: Start training from epoch: 0, iter: 0\n',
                 '2026-12-04 10:00:00,000 INFO: Validation demo\n', '\t # psnr: 28.1234\n', 'Traceback ...\n'):
        assert run_demo.progress_line('teacher', line, 2000) is None


def test_training_steps_read_their_total_iterations():
    for _, option_file, _ in run_demo.STEPS:
        with open(REPO_ROOT / 'options' / 'train' / 'STD' / 'demo' / option_file) as f:
            assert run_demo.total_iterations(option_file) == yaml.safe_load(f)['train']['total_iter']
    assert run_demo.total_iterations('no_such_file.yml') is None


# ------------------------------------------------------------------------------------------------- failure tail
OPTIONS_DUMP = ['2026-12-04 10:00:00,000 INFO: \n', '  name: demo_VESPCN_teacher_x4\n', '  datasets:[\n',
                '    train:[\n', '      name: demo_train\n', '    ]\n', '  ]\n']


def test_failure_tail_shows_the_traceback_and_what_led_to_it():
    lines = (['2026-12-04 10:00:00,000 INFO: starting\n'] + OPTIONS_DUMP
             + [f'2026-12-04 10:00:01,000 INFO: step {i}\n' for i in range(10)]
             + ['Traceback (most recent call last):\n', '  File "x.py", line 1, in <module>\n',
                'RuntimeError: out of memory\n'])
    tail = run_demo.failure_tail(lines)
    assert tail[-1] == 'RuntimeError: out of memory' and 'Traceback (most recent call last):' in tail
    assert tail[0] == '2026-12-04 10:00:01,000 INFO: step 5'  # the few lines before the traceback
    assert not any('name: demo_VESPCN' in line for line in tail)


def test_failure_tail_finds_a_one_line_user_error_and_cuts_a_long_traceback():
    lines = OPTIONS_DUMP + ['info\n'] * 50 + ['stdsr.train: error: option file x.yml: unknown key train.foo\n']
    tail = run_demo.failure_tail(lines)
    assert tail[-1].startswith('stdsr.train: error:') and len(tail) == 1 + run_demo.FAILURE_CONTEXT
    long = ['Traceback (most recent call last):\n'] + [f'  frame {i}\n' for i in range(200)] + ['ValueError: bad\n']
    tail = run_demo.failure_tail(['before\n'] + long)
    assert len(tail) <= run_demo.FAILURE_TAIL and tail[0] == 'before' and tail[1].startswith('Traceback')
    assert tail[-1] == 'ValueError: bad' and any('lines left out' in line for line in tail)


def test_failure_tail_of_a_killed_step_leaves_out_the_options_dump():
    lines = ['2026-12-04 10:00:00,000 INFO: Version Information:\n'] + OPTIONS_DUMP
    assert run_demo.failure_tail(lines) == ['2026-12-04 10:00:00,000 INFO: Version Information:',
                                            '2026-12-04 10:00:00,000 INFO: ']
    assert run_demo.exit_description(-signal.SIGTERM) == 'killed by SIGTERM'
    assert run_demo.exit_description(1) == 'exit 1'


# ------------------------------------------------------------------------------------------------- run_step
def test_step_log_is_written_while_the_step_runs(tmp_path):
    """The child prints a line, then waits until that line is in the log: only a log written as it goes has it."""
    log = tmp_path / 'step.log'
    child = ('import sys, time\nprint("iteration one", flush=True)\nfor _ in range(200):\n'
             f'    if "iteration one" in open({str(log)!r}).read(): sys.exit(0)\n    time.sleep(0.05)\nsys.exit(3)')
    run_demo.run_step('probe', [sys.executable, '-c', child], str(log))
    assert log.read_text() == 'iteration one\n'


def test_failed_step_reports_its_traceback_not_its_options_dump(tmp_path, capsys):
    child = ('print("2026-12-04 10:00:00,000 INFO: ")\n'
             + ''.join(f'print("  key{i}: value")\n' for i in range(40))
             + 'raise FileNotFoundError("datasets/demo/train/GT.lmdb is missing")')
    with pytest.raises(DemoError) as err:
        run_demo.run_step('training the teacher', [sys.executable, '-c', child], str(tmp_path / 'step.log'))
    message = str(err.value)
    assert message.splitlines()[0].startswith('training the teacher failed (exit 1); full log: ')
    assert message.splitlines()[-1] == 'FileNotFoundError: datasets/demo/train/GT.lmdb is missing'
    assert 'Traceback (most recent call last):' in message and len(message.splitlines()) < 15
    assert 'key40' not in (tmp_path / 'step.log').read_text() and 'key39' in (tmp_path / 'step.log').read_text()


def test_export_step_echoes_its_report_lines_not_third_party_warnings():
    line = 'Wrote results/demo/onnx/std_student.onnx (STD student, x4, window 3, opset 17); parity 2.4e-07'
    assert run_demo.export_line(line + '\n') == '    ' + line
    for noise in ('/x/torch/onnx/utils.py:12: UserWarning: Constant folding not applied\n', '  warnings.warn(\n', '\n'):
        assert run_demo.export_line(noise) is None
