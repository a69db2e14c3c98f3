"""``scripts/family_table.py``: the paper's summary table over several student families, from the comparison
harness's committed records or ``comparison.json`` files (library: :mod:`stdsr.tools.comparison.family_summary`).

Example (the PAN study's three pairs, docs/distillation_methods.md)::

    python scripts/family_table.py --study VESPCN=docs/records/pan/compare \\
        --study VSRNet=docs/records/pan/compare_vsrnet --study FastDVDnet-SR=docs/records/pan/compare_fastdvdnet \\
        --iters 3200 --teacher-label "PAN x4" --threads 1 --output family_table.md

Parameters and runtime per output frame are measured with the project's profiler
(:func:`stdsr.tools.profiling.network.profile_network`): each study's student is the ``network_g`` of its baseline's
option file (as recorded, with the run's ``network_g`` overrides), the teacher the ``network_t`` of the first
distilled run. ``--no-cost`` leaves both columns empty. Every study, and the output file's folder, is checked before
anything is measured; the table is written under a temporary name and renamed.
"""
import argparse
import os
import sys
from os import path as osp

import torch

from stdsr.config.options import OptionError, apply_force_yml, load_yaml
from stdsr.errors import CompareError
from stdsr.runtime.device import resolve_device
from stdsr.tools.comparison.family_summary import family_table, load_study
from stdsr.tools.profiling.network import profile_network
from stdsr.utils.atomic_files import write_text_atomic
from stdsr.utils.cli import run_cli
from stdsr.utils.output_paths import check_output_file


def parse_study(entry):
    """``STUDENT=PATH`` -> (student, path)."""
    student, sep, source = entry.partition('=')
    if not (sep and student.strip() and source.strip()):
        raise CompareError(f'--study {entry!r}: expected STUDENT=RECORDS_FOLDER_OR_COMPARISON_JSON')
    return student.strip(), source.strip()


def run_network(run, key, where):
    """(option dict, network section ``key``) of the option file a run was made with, or None without that key."""
    opt_file = run.get('opt_file')
    if not opt_file or not osp.isfile(opt_file):
        raise CompareError(f'{where}: run {run["label"]} names option file {opt_file!r}, which is not here (run from '
                           'the repository root, or give --no-cost)')
    opt = load_yaml(opt_file)
    if key not in opt:
        return None
    entries = [e for e in run.get('force_yml') or [] if e.split('=', 1)[0].split(':')[0].strip() == key]
    try:
        apply_force_yml(opt, entries)
    except OptionError as err:
        raise CompareError(f'{where}: {err}') from None
    return opt, opt[key]


def networks_to_profile(studies):
    """[(student, opt, arch)] of every study's baseline, and (opt, arch) of the first teacher, or None."""
    students, teacher = [], None
    for study in studies:
        base = next((run for run in study.runs if run['label'] == study.baseline_label()), None)
        if base is None:
            raise CompareError(f'study {study.student}: {study.source} has no {study.baseline_label()} run')
        found = run_network(base, 'network_g', study.source)
        students.append((study.student, *found))
        for run in study.runs:
            if teacher is None and run['label'] != base['label']:
                teacher = run_network(run, 'network_t', study.source)
    return students, teacher


def measure(opt, arch, key, args, device):
    torch.manual_seed(0)
    prof = profile_network(arch, tuple(args.shape), device, args.repeats, args.warmup, net_key=key, opt=opt)
    return prof.params, prof.seconds * 1e3


def run(args):
    """Load every study, measure the networks, print the table and write ``args.output``; returns the text."""
    if args.output:
        if osp.exists(args.output) and not args.overwrite:
            raise CompareError(f'--output {args.output} exists; pass --overwrite to replace it')
        check_output_file(args.output, '--output file')
    studies = [load_study(*parse_study(entry)) for entry in args.study or []]
    if not studies:
        raise CompareError('no study given: --study STUDENT=RECORDS_FOLDER_OR_COMPARISON_JSON (repeatable)')
    costs, teacher_cost, setup = {}, None, ''
    if not args.no_cost:
        students, teacher = networks_to_profile(studies)  # every option file is found before anything runs
        load_before = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        device = str(resolve_device(args.device))
        for student, opt, arch in students:
            costs[student] = measure(opt, arch, 'network_g', args, device)
        if teacher is not None:
            teacher_cost = (args.teacher_label, *measure(*teacher, 'network_t', args, device))
        t, c, h, w = args.shape
        setup = (f'Parameters and runtime per output frame: scripts/profile_models.py conventions on {device} '
                 f'({torch.get_num_threads()} torch thread(s)' +
                 (f', 1-min load average {load_before:.1f} before' if load_before is not None else '') +
                 f'), LR input {h}×{w} (a sliding student reads its own window), median of {args.repeats} forward '
                 'passes, random weights.\n')
    text = family_table(studies, args.iters, args.sets, args.methods, args.metric, costs, teacher_cost) + setup
    print(text, end='', flush=True)
    if args.output:
        write_text_atomic(args.output, text)
    return text


def build_parser():
    parser = argparse.ArgumentParser(description='One table in the paper layout over several distillation studies.')
    parser.add_argument('--study', action='append', metavar='STUDENT=PATH', help='a row: the student\'s name and '
                        'its study, a records folder or a comparison.json (repeatable; rows in this order)')
    parser.add_argument('--iters', type=int, default=None, help='the budget (default: the longest all studies have)')
    parser.add_argument('--sets', nargs='+', default=None, help='test sets (default: those all studies have)')
    parser.add_argument('--methods', nargs='+', default=None, metavar='LABEL',
                        help='method columns by plan label, in order (default: every label but the baselines)')
    parser.add_argument('--metric', choices=['psnr', 'ssim'], default='psnr')
    parser.add_argument('--teacher-label', default='teacher', help='name of the teacher row')
    parser.add_argument('--no-cost', action='store_true', help='leave parameters and runtime empty (no profiling)')
    parser.add_argument('--shape', nargs=4, type=int, default=[5, 3, 64, 64], metavar=('T', 'C', 'H', 'W'),
                        help='LR input of the runtime measurement')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'auto'], default='auto')
    parser.add_argument('--repeats', type=int, default=10, help='timed forward passes (median is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed forward passes first')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (1: stable on a busy machine)')
    parser.add_argument('--output', default=None, metavar='FILE', help='also write the table to FILE (markdown)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --output file')
    return parser


def main(argv=None):
    """Exit status: 0, or 2 with one ``family_table: error: ...`` line for bad input."""
    return run_cli('family_table', lambda arguments: run(build_parser().parse_args(arguments)), argv)


if __name__ == '__main__':
    sys.exit(main())
