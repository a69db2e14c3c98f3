"""Committed run records: a study that needs more CPU-hours than one session continues where the last one stopped.

A finished run's ``result.json`` lives in the work dir (never committed: it sits next to checkpoints). With a
``records`` folder (plan key or ``--records``) the harness also writes each finished run's small record there,
``<run name>.json``: its metrics per test set and clip, the configuration digest it was checked against, the
options that made it (option file and every override) and each distillation term's share of the pixel loss over
training. A later call, in any clone, reuses a record whose configuration matches instead of training again, and
``--report-only`` rebuilds the whole report from records alone. Configurations are digested with paths relative
to the working directory, so a record made in one clone matches in another.
"""
import glob
import os
import subprocess
from os import path as osp

import basicsr
import torch

import stdsr

from stdsr.errors import CompareError
from stdsr.runtime.logger import parse_train_line
from stdsr.utils.atomic_files import write_json_atomic
from stdsr.tools.comparison.plan import read_json

TEACHER_RECORD = 'teacher.json'
SHARE_PREFIX = 'share_'  # DistillVSRModel logs each term's share of the pixel loss as share_<term>


def record_path(records_dir, name):
    return osp.join(records_dir, f'{name}.json')


def term_shares(train_root):
    """``[{'iter': n, '<term>': share, ...}, ...]`` from the training logs under ``train_root`` (every logged
    iteration, the latest log last: a resumed run's lines continue the earlier ones), and the mean share per term
    over those lines. Runs without distillation terms give ``([], {})``."""
    logs = sorted(glob.glob(osp.join(train_root, '**', 'train_*.log'), recursive=True), key=osp.getmtime)
    rows = {}
    for log in logs:
        with open(log, errors='replace') as f:
            for line in f:
                parsed = parse_train_line(line)
                shares = {name[len(SHARE_PREFIX):]: value for name, value in (parsed or {}).get('values', {}).items()
                          if name.startswith(SHARE_PREFIX)}
                if shares:
                    rows[parsed['iter']] = {'iter': parsed['iter'], **shares}
    series = [rows[it] for it in sorted(rows)]
    terms = sorted({term for row in series for term in row if term != 'iter'})
    means = {term: sum(row[term] for row in series if term in row) / sum(1 for row in series if term in row)
             for term in terms}
    return series, means


def source_commit():
    """The git commit of the code that made a record ('+changes' when the work tree differed), or None outside git.

    The configuration digest covers the options, not the code: a default changed in the code since a record was
    made is visible here, so a reader can tell which records a code change may have made stale."""
    root = osp.dirname(osp.dirname(osp.abspath(stdsr.__file__)))
    try:
        head = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(['git', '-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'stdsr'],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ('+changes' if dirty.returncode == 0 and dirty.stdout.strip() else '')


def provenance(train_seconds=None, train_from_iter=None):
    """What made a record besides its options: the code's commit and versions, and the wall time of the training
    process that finished the run (so that the next session can plan what is left). A resumed run's process trained
    only from ``train_from_iter`` on, so its ``train_seconds`` covers that part of the budget."""
    return {'commit': source_commit(), 'stdsr': stdsr.__version__, 'torch': torch.__version__,
            'basicsr': basicsr.__version__, 'train_seconds': train_seconds, 'train_from_iter': train_from_iter}


def make_record(result, run, spec, train_root, train_seconds=None, train_from_iter=None):
    """The committed record of a finished run: its result without machine-local paths, plus how it was made."""
    series, means = term_shares(train_root)
    record = {key: value for key, value in result.items() if key != 'checkpoint'}
    record['opt_file'] = osp.relpath(run['opt_path'])
    record['force_yml'] = list(spec.entries)
    record['term_shares'] = {'mean': means, 'by_iter': series}
    record['made_with'] = provenance(train_seconds, train_from_iter)
    return record


def write_record(records_dir, name, record):
    os.makedirs(records_dir, exist_ok=True)
    write_json_atomic(record_path(records_dir, name), record)


def find_record(records_dir, name, config):
    """The record of run ``name`` when it matches ``config``; None when there is none. A record of the same run
    name made with another configuration is an error, as for a result.json in the work dir."""
    if not records_dir:
        return None
    path = record_path(records_dir, name)
    if not osp.isfile(path):
        return None
    record = read_json(path, 'run record')
    if record.get('config') != config:
        raise CompareError(f'{path} records run {name} with another configuration (option file, overrides or data '
                           'changed since); give another records folder or move that record away')
    return record


def find_teacher_record(records_dir, config):
    """The teacher's recorded evaluation when it matches ``config`` (checkpoint digest, network, test sets)."""
    if not records_dir:
        return None
    path = osp.join(records_dir, TEACHER_RECORD)
    if not osp.isfile(path):
        return None
    record = read_json(path, 'teacher record')
    return record if record.get('config') == config else None
