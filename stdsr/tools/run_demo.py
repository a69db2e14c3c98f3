"""The main job on the embedded demo data: demo clips -> teacher -> baseline student -> STD student -> table.

Every step is a real entry point (``make_demo_clips.py``, ``python -m stdsr.train``, ``scripts/benchmark.py``)
so the demo exercises exactly what a user runs. A finished step is reused on the next call (delete its
experiment folder, or ``make clean-demo``, to redo it); an interrupted training continues with
``--auto_resume``. The result is printed and written to ``results/demo/summary.md``.

Each step's whole output goes to ``results/demo/logs/<step>.log`` as it comes; a training step prints a short
progress line per logged iteration (iteration, losses, s/iter, the run's own ETA, the machine's load), so a slow,
busy machine shows as slow rather than stuck. A failed step prints its traceback or error line, not the last
lines of whatever it printed before.
"""
import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from os import path as osp

import yaml

from stdsr.errors import DemoError
from stdsr.runtime.logger import parse_train_line
from stdsr.utils.atomic_files import write_text_atomic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_OPTIONS = osp.join('options', 'train', 'STD', 'demo')
# (label, option file, experiment name) in training order: the STD student needs the teacher.
STEPS = [
    ('teacher', 'train_VESPCN_teacher_demo.yml', 'demo_VESPCN_teacher_x4'),
    ('baseline student', 'train_VESPCNS_baseline_demo.yml', 'demo_VESPCNS_baseline_x4'),
    ('STD student', 'train_VESPCNS_STD_demo.yml', 'demo_VESPCNS_STD_x4'),
]
# Lines of a non-training step worth echoing while it runs (training lines get a progress line of their own).
PROGRESS_MARKS = ('# psnr', '# ssim', 'Resuming', 'End of training')
TRACEBACK = 'Traceback (most recent call last)'
ERROR_LINE = re.compile(r'(^|\s)\w*(Error|Exception|error):|: error: |Killed|Aborted|Segmentation fault')
FAILURE_CONTEXT = 5  # lines shown before the traceback or error line
FAILURE_TAIL = 40  # at most this many lines of a failure


def progress_line(label, line, total_iter=None):
    """A short live line for one of BasicSR's training lines: iteration (of how many), losses, time per iteration,
    the run's own ETA and the machine's load, so a slow (busy) machine shows as slow, not stuck; None for any
    other line."""
    parsed = parse_train_line(line)
    if parsed is None:
        return None
    it = parsed['iter']
    parts = [f'iter {it:,}' + (f'/{total_iter:,} ({100 * it / total_iter:.0f}%)' if total_iter else '')]
    parts += [f'{name} {value:.3e}' for name, value in parsed['values'].items()]
    if parsed['time'] is not None:
        parts += [f"{parsed['time']:.2f} s/iter", f"ETA {parsed['eta'].strip()}"]
    if hasattr(os, 'getloadavg'):
        parts.append(f'load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
    return f'    {label}: ' + ', '.join(parts)


def marked_line(line):
    """Echo of a line of a non-training step when it carries a progress mark, else None."""
    return '    ' + line.rstrip()[-150:] if any(mark in line for mark in PROGRESS_MARKS) else None


def failure_tail(lines, context=FAILURE_CONTEXT, limit=FAILURE_TAIL):
    """The lines that show why a step failed: its last traceback (or error line) with ``context`` lines before it,
    to the end of the output, at most ``limit`` lines (the traceback's start and its last lines).

    Without a traceback or error line (a killed process), the last ``limit`` lines that start a log record: the
    indented continuation lines of a multi-line record (BasicSR's options dump, the environment banner) are
    left out, they never say what went wrong."""
    lines = [line.rstrip('\n') for line in lines]
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith(TRACEBACK)), None)
    if start is None:
        start = next((i for i in range(len(lines) - 1, -1, -1) if ERROR_LINE.search(lines[i])), None)
    if start is None:
        return [line for line in lines if line.strip() and not line[:1].isspace()][-limit:]
    shown = lines[max(0, start - context):]
    if len(shown) > limit:
        head, rest = shown[:context + 2], limit - context - 3
        shown = head + [f'... ({len(shown) - len(head) - rest} lines left out)'] + shown[-rest:]
    return shown


def exit_description(returncode):
    """``exit 1``, or the signal that ended the process (``killed by SIGTERM``)."""
    if returncode < 0:
        try:
            return f'killed by {signal.Signals(-returncode).name}'
        except ValueError:
            return f'killed by signal {-returncode}'
    return f'exit {returncode}'


def run_step(label, cmd, log_path, echo=marked_line):
    """Run ``cmd``, keep its whole output in ``log_path`` as it comes (line-buffered: the log shows the progress
    while the step runs) and print ``echo(line)`` for each line where that is not None. A failure raises
    DemoError with the failing lines (:func:`failure_tail`)."""
    print(f'[demo] {label}: {" ".join(cmd)}', flush=True)
    print(f'[demo]     full output, as it comes: {osp.relpath(log_path, REPO)}', flush=True)
    start = time.time()
    lines = collections.deque(maxlen=2000)  # enough for any traceback; the log has everything
    with open(log_path, 'w', buffering=1) as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, env=dict(os.environ, PYTHONUNBUFFERED='1'))
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            shown = echo(line)
            if shown is not None:
                print(shown, flush=True)
        proc.wait()
    if proc.returncode != 0:
        raise DemoError(f'{label} failed ({exit_description(proc.returncode)}); full log: {log_path}\n'
                        + '\n'.join(failure_tail(lines)))
    print(f'[demo] {label}: done in {(time.time() - start) / 60:.1f} min', flush=True)


def total_iterations(option_file):
    """``train.total_iter`` of a demo option file (for the progress line), None if it cannot be read."""
    try:
        with open(osp.join(REPO, DEMO_OPTIONS, option_file)) as f:
            return int(yaml.safe_load(f)['train']['total_iter'])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


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
    total = total_iterations(option_file)

    def echo(line):
        return progress_line(label, line, total) or marked_line(line)

    run_step(f'training the {label}', train_command(option_file, exp), osp.join(log_dir, f'{name}.log'), echo)


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
    run_step('exporting the STD student', cmd, osp.join(out, 'logs', 'export_onnx.log'), echo=export_line)


def export_line(line):
    """The export's own report lines (parity, ms/frame); third-party warnings stay in its log."""
    return None if 'Warning' in line or line[:1].isspace() or not line.strip() else '    ' + line.rstrip()
