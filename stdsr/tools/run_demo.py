"""The main job on the embedded demo data: demo clips -> teacher -> baseline student -> STD student -> table.

Every step is a real entry point (``make_demo_clips.py``, ``python -m stdsr.train``, ``scripts/benchmark.py``)
so the demo exercises exactly what a user runs. A finished step is reused on the next call (delete its
experiment folder, or ``make clean-demo``, to redo it); an interrupted training continues with
``--auto_resume``. The result is printed and written to ``results/demo/summary.md``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from os import path as osp

from stdsr.errors import DemoError
from stdsr.utils.atomic_files import write_text_atomic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_OPTIONS = osp.join('options', 'train', 'STD', 'demo')
# (label, option file, experiment name) in training order: the STD student needs the teacher.
STEPS = [
    ('teacher', 'train_VESPCN_teacher_demo.yml', 'demo_VESPCN_teacher_x4'),
    ('baseline student', 'train_VESPCNS_baseline_demo.yml', 'demo_VESPCNS_baseline_x4'),
    ('STD student', 'train_VESPCNS_STD_demo.yml', 'demo_VESPCNS_STD_x4'),
]
PROGRESS_MARKS = ('lr:(', '# psnr', '# ssim', 'Resuming', 'End of training', 'Traceback', 'Error:')


def run_step(label, cmd, log_path):
    """Run ``cmd``, echo its progress lines, keep its whole output in ``log_path``."""
    print(f'[demo] {label}: {" ".join(cmd)}', flush=True)
    tail = []
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-30:]
            if any(mark in line for mark in PROGRESS_MARKS):
                print('    ' + line.rstrip()[-150:], flush=True)
        proc.wait()
    if proc.returncode != 0:
        raise DemoError(f'{label} failed (exit {proc.returncode}); full log: {log_path}\n' + ''.join(tail))


def one_device_overrides():
    """``--force_yml num_gpu=1`` when more than one CUDA device is visible, else nothing (CPU, one GPU): the demo
    options say ``num_gpu: auto``, which on a multi-GPU machine is DataParallel over all of them, which
    distillation refuses; the demo is sized for one device."""
    import torch  # imported here: the rest of the demo driver only starts subprocesses

    return ['--force_yml', 'num_gpu=1'] if torch.cuda.device_count() > 1 else []


def train_command(option_file, exp):
    """The training command of one step: ``--auto_resume`` when an interrupted run left states, one device."""
    cmd = [sys.executable, '-m', 'stdsr.train', '-opt', osp.join(DEMO_OPTIONS, option_file)]
    if osp.isdir(osp.join(exp, 'training_states')):
        cmd.append('--auto_resume')
    return cmd + one_device_overrides()


def train_step(label, option_file, name, log_dir):
    exp = osp.join(REPO, 'experiments', name)
    if osp.isfile(osp.join(exp, 'models', 'net_g_latest.pth')):
        print(f'[demo] {label}: reusing {osp.relpath(exp, REPO)} (delete it to retrain)', flush=True)
        return
    run_step(f'training the {label}', train_command(option_file, exp), osp.join(log_dir, f'{name}.log'))


SET_TITLES = {
    'demo': 'Held-out demo test clips (photos never seen in training)',
    'demo_real': 'Real-motion test clips (carphone, a camera video never seen in training or validation)',
}


def format_summary(report, datasets, seconds):
    """Markdown summary from benchmark.py's ``results.json``: one table per test set (models in command-line
    order, bicubic first); ``datasets`` is a name or a list of names."""
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    lines = [
        '# stdsr demo: Space-Time Distillation on the embedded demo clips', '',
        'x4 BI. PSNR/SSIM on Y, averaged per clip then over clips; tOF: temporal consistency (lower is better); '
        'runtime: median forward time per output frame on this machine.'
    ]
    for dataset in datasets:
        if not all(dataset in report['results'][m['label']] for m in report['models']):
            continue
        lines += ['', f'## {SET_TITLES.get(dataset, dataset)}', '',
                  '| model | parameters | PSNR (dB) | SSIM | tOF | runtime / frame (ms) |', '|---|--:|--:|--:|--:|--:|']
        psnr = {}
        for model in report['models']:
            res = report['results'][model['label']][dataset]
            avg = res['average']
            psnr[model['label']] = avg['psnr']
            tof = f"{avg['tof']:.4f}" if avg.get('tof') is not None else '-'
            lines.append(f"| {model['label']} | {model['params']:,} | {avg['psnr']:.4f} | {avg['ssim']:.4f} | {tof} | "
                         f"{res['runtime_ms_per_frame']:.1f} |")
        if {'baseline student', 'STD student', 'teacher'} <= set(psnr):
            base, std, teacher = psnr['baseline student'], psnr['STD student'], psnr['teacher']
            gap = teacher - base
            closed = f', {100 * (std - base) / gap:.0f}% of the teacher-student gap' if gap > 1e-6 else (
                ', but the teacher is not better than the baseline student here, so there is no gap to close')
            lines += ['', f'STD - baseline: {std - base:+.4f} dB{closed}.']
    lines += ['', 'Same student, data, loss and budget: the difference is the distillation alone (one seed; '
              'docs/results.md has the seed study). A few CPU minutes of training keep every network close to '
              'bicubic; the full-size option files in options/train/STD/ are the paper\'s setting.']
    lines += ['', f'Total demo time: {seconds / 60:.1f} min.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='datasets/demo', help='where the demo clips are (made if absent)')
    parser.add_argument('--out', default='results/demo', help='summary, benchmark tables and plot')
    args = parser.parse_args(argv)
    start = time.time()
    out = osp.join(REPO, args.out)
    log_dir = osp.join(out, 'logs')
    os.makedirs(log_dir, exist_ok=True)

    run_step('demo clips', [
        sys.executable, 'scripts/data_preparation/make_demo_clips.py', '--root', args.data_root, '--skip-existing',
        '--lmdb'  # the training option files read LMDBs, as full-size training does
    ], osp.join(log_dir, 'make_demo_clips.log'))
    for label, option_file, name in STEPS:
        train_step(label, option_file, name, log_dir)

    bench_dir = osp.join(out, 'benchmark')
    cmd = [sys.executable, 'scripts/benchmark.py', '--bicubic', 'matlab', '--demo', args.data_root, '--name', 'demo',
           '--out', bench_dir, '--overwrite', '--quiet']
    for label, option_file, _ in STEPS:
        cmd += ['--opt', f'{label}={osp.join(DEMO_OPTIONS, option_file)}']
    run_step('evaluating on the demo test clips (photos and real motion)', cmd, osp.join(log_dir, 'benchmark.log'))
    with open(osp.join(bench_dir, 'results.json')) as f:
        results = json.load(f)
    summary = format_summary(results, ['demo', 'demo_real'], time.time() - start)
    write_text_atomic(osp.join(out, 'summary.md'), summary)
    print('\n' + summary + f'\n[demo] written to {osp.relpath(osp.join(out, "summary.md"), REPO)}', flush=True)
    export_std_student(out)


def export_std_student(out):
    """ONNX export of the STD student with its parity check and one ms/frame line (docs/deployment.md)."""
    cmd = [sys.executable, 'scripts/export_onnx.py', '--opt', osp.join(DEMO_OPTIONS, STEPS[-1][1]), '--output',
           osp.join(out, 'onnx', 'std_student.onnx'), '--overwrite', '--repeats', '2']
    print(f'[demo] exporting the STD student: {" ".join(cmd)}', flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        print('    ' + line, flush=True)
    if proc.returncode != 0:
        raise DemoError(f'ONNX export failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}')
