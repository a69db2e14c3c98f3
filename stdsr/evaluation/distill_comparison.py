"""Compare distillation methods on the user's own data: same data, seeds and iteration budget for every run.

Each option file is trained once per seed by ``python -m stdsr.train`` in a subprocess (``--force_yml`` sets the
name, seed, budget and experiment folder under ``--work-dir``), its final student is evaluated on every test set
(PSNR/SSIM on Y), the teacher is evaluated as a reference, and per test set a markdown table (mean and spread over
seeds), the paired per-seed differences to the baseline, and a bar chart are written::

    python scripts/compare_distillation.py --opts A.yml B.yml --baseline base.yml --seeds 0 1 2 --iters 20000
    python scripts/compare_distillation.py --plan options/train/STD/baselines/plan_compare_demo.yml

Resumable: a finished run (``runs/<name>/result.json``, written atomically after its evaluation) is never
repeated; an interrupted training continues with ``--auto_resume``. Runs that do not use the same data (train
set, crops, batch, scale, test set) are refused before anything is trained. See ``docs/distillation_methods.md``.
"""
import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from copy import deepcopy
from os import path as osp

import yaml

import stdsr  # noqa: F401  (patches torchvision for basicsr; registers archs, datasets, losses, models)
from stdsr.utils.options import OptionError, apply_force_yml, load_yaml, validate_options
from stdsr.utils.option_schema import plain_name_problem

# dataset keys that change speed, not data
PERFORMANCE_KEYS = {'name', 'num_worker_per_gpu', 'prefetch_mode', 'pin_memory', 'persistent_workers', 'phase'}
PATH_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file')
LOG_TAIL_LINES = 40
PLAN_KEYS = {'runs', 'baseline', 'seeds', 'iters', 'work_dir', 'teacher_ckpt', 'teacher_opt', 'force_yml',
             'test_gt', 'test_lq', 'test_sets', 'train_val', 'keep_going', 'nproc'}


class CompareError(RuntimeError):
    """The comparison cannot go on (missing file, failed run, runs that do not share their data, ...)."""


# ------------------------------------------------------------------------------------------------ small helpers
def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj):
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def read_json(path):
    with open(path) as f:
        return json.load(f)


def plain(obj):
    """OrderedDicts (BasicSR's YAML loader) -> plain dicts/lists, for hashing and dumping."""
    return json.loads(json.dumps(obj))


def digest(obj):
    return hashlib.sha256(json.dumps(plain(obj), sort_keys=True).encode()).hexdigest()[:16]


def log_tail(path, lines=LOG_TAIL_LINES):
    if not osp.isfile(path):
        return '(no log written)'
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def default_label(opt_path):
    stem = osp.splitext(osp.basename(opt_path))[0]
    return stem[len('train_'):] if stem.startswith('train_') else stem


# ------------------------------------------------------------------------------------------------ settings
def build_arg_parser():
    parser = argparse.ArgumentParser(description='Train and compare distillation methods under equal budgets.')
    parser.add_argument('--opts', nargs='+', default=None, help='option files to compare')
    parser.add_argument('--plan', default=None, help="YAML plan: {runs: [file | {opt, label}], baseline, seeds, "
                        'iters, work_dir, teacher_ckpt, teacher_opt, force_yml, test_gt, test_lq}; flags override it')
    parser.add_argument('--baseline', default=None, help='option file of the baseline student (added to the runs)')
    parser.add_argument('--seeds', nargs='+', type=int, default=None, help='seeds; every run is trained per seed')
    parser.add_argument('--iters', type=int, default=None, help='iterations per run (default: the common '
                        'train.total_iter of the option files); LR schedules are stretched to it')
    parser.add_argument('--work-dir', default=None, help='where runs and reports go (default: experiments/compare)')
    parser.add_argument('--teacher-ckpt', default=None, help="teacher checkpoint (default: the option files' "
                        'path.pretrain_network_t); distilled runs use it and it is evaluated as a reference')
    parser.add_argument('--teacher-opt', default=None, help='option file whose network_g is the teacher, when no '
                        'compared file has a network_t')
    parser.add_argument('--force-yml', nargs='+', default=None, help='overrides for every run (KEY:SUB=VALUE); an '
                        'entry whose top-level section a file lacks (e.g. network_t) is skipped for that file')
    parser.add_argument('--test-gt', default=None, help='GT root of the test set (default: datasets.val of the runs)')
    parser.add_argument('--test-lq', default=None, help='LQ root of the test set (with --test-gt)')
    parser.add_argument('--test-set', action='append', default=None, metavar='NAME=GT_ROOT:LQ_ROOT',
                        help='a test set to evaluate every run on (repeatable; replaces --test-gt/--test-lq)')
    parser.add_argument('--train-val', action='store_true', help="keep the option files' validation during training")
    parser.add_argument('--keep-going', action='store_true', help='train the other runs when one fails')
    parser.add_argument('--nproc', type=int, default=None, help='processes per run (torchrun); default: one')
    return parser


def resolve_settings(args):
    """Merge the plan file (if any) with the command line; flags win. Relative plan paths are from the cwd."""
    plan = {}
    if args.plan:
        if not osp.isfile(args.plan):
            raise CompareError(f'plan file not found: {args.plan}')
        with open(args.plan) as f:
            plan = yaml.safe_load(f) or {}
        if not isinstance(plan, dict):
            raise CompareError(f'{args.plan}: a plan must be a mapping')
        unknown = sorted(set(plan) - PLAN_KEYS)
        if unknown:
            raise CompareError(f'{args.plan}: unknown plan key(s) {unknown}; known: {sorted(PLAN_KEYS)}')
    entries = [{'opt': p} for p in args.opts] if args.opts else []
    if not entries:
        for item in plan.get('runs') or []:
            entries.append(dict(item) if isinstance(item, dict) else {'opt': item})
    baseline = args.baseline or plan.get('baseline')
    if not entries and not baseline:
        raise CompareError('nothing to compare: give --opts, --plan with runs, or --baseline')
    settings = {
        'baseline': baseline,
        'seeds': args.seeds if args.seeds is not None else list(plan.get('seeds') or [0]),
        'iters': args.iters if args.iters is not None else plan.get('iters'),
        'work_dir': osp.abspath(args.work_dir or plan.get('work_dir') or osp.join('experiments', 'compare')),
        'teacher_ckpt': args.teacher_ckpt or plan.get('teacher_ckpt'),
        'teacher_opt': args.teacher_opt or plan.get('teacher_opt'),
        'force_yml': list(plan.get('force_yml') or []) + list(args.force_yml or []),
        'test_gt': args.test_gt or plan.get('test_gt'),
        'test_lq': args.test_lq or plan.get('test_lq'),
        'train_val': args.train_val or bool(plan.get('train_val')),
        'keep_going': args.keep_going or bool(plan.get('keep_going')),
        'nproc': args.nproc or plan.get('nproc'),
    }
    if baseline and osp.abspath(baseline) not in [osp.abspath(e['opt']) for e in entries]:
        entries.insert(0, {'opt': baseline})
    for entry in entries:
        unknown = sorted(set(entry) - {'opt', 'label'})
        if unknown or 'opt' not in entry:
            raise CompareError(f"plan run {entry}: expected {{opt: FILE, label: NAME}}, got keys {sorted(entry)}")
        entry.setdefault('label', default_label(entry['opt']))
        problem = plain_name_problem(entry['label'])
        if problem:  # the label names the run's folder under the work dir
            raise CompareError(f"plan run {entry['opt']}: label {problem}")
    labels = [e['label'] for e in entries]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise CompareError(f'run labels must be unique, {duplicates} appear twice (set a label per run in a plan)')
    if not settings['seeds'] or len(set(settings['seeds'])) != len(settings['seeds']):
        raise CompareError(f"seeds must be distinct, got {settings['seeds']}")
    if settings['iters'] is not None and int(settings['iters']) < 1:
        raise CompareError(f"--iters must be positive, got {settings['iters']}")
    if bool(settings['test_gt']) != bool(settings['test_lq']):
        raise CompareError('--test-gt and --test-lq go together')
    settings['test_sets'] = parse_test_sets(args.test_set, plan.get('test_sets'), args.plan)
    if settings['test_sets'] and settings['test_gt']:
        raise CompareError('give test sets either as --test-set/test_sets or as --test-gt/--test-lq, not both')
    settings['runs'] = entries
    return settings


def parse_test_sets(flags, plan_sets, plan_path):
    """``--test-set NAME=GT:LQ`` flags (or the plan's ``test_sets: {NAME: {gt, lq}}``) -> {name: (gt, lq)}."""
    sets = OrderedDict()
    if flags:
        for flag in flags:
            name, sep, roots = flag.partition('=')
            gt, sep2, lq = roots.partition(':')
            if not (sep and sep2 and name and gt and lq):
                raise CompareError(f'--test-set {flag!r}: expected NAME=GT_ROOT:LQ_ROOT')
            sets[name] = (gt, lq)
    elif plan_sets:
        if not isinstance(plan_sets, dict):
            raise CompareError(f'{plan_path}: test_sets must map names to {{gt: DIR, lq: DIR}}')
        for name, roots in plan_sets.items():
            if not isinstance(roots, dict) or set(roots) != {'gt', 'lq'}:
                raise CompareError(f'{plan_path}: test_sets.{name} must be {{gt: DIR, lq: DIR}}, got {roots!r}')
            sets[str(name)] = (roots['gt'], roots['lq'])
    for name, (gt, lq) in sets.items():
        missing = [root for root in (gt, lq) if not osp.isdir(root)]
        if missing:
            raise CompareError(f'test set {name}: no such folder ' + ', '.join(missing))
    return sets


# ------------------------------------------------------------------------------------------------ option files
def apply_overrides(opt, entries, source):
    """Apply ``--force-yml`` entries; those whose top-level section the file lacks are skipped for it."""
    applied = []
    for entry in entries:
        top = entry.split('=', 1)[0].split(':')[0].strip()
        if ':' in entry.split('=', 1)[0] and top not in opt:
            continue
        try:
            apply_force_yml(opt, [entry])
        except OptionError as err:
            raise CompareError(f'{source}: {err}') from None
        applied.append(entry)
    return applied


def check_distill_section(opt, source):
    """The DistillVSRModel distill-section check, before anything is trained."""
    if opt.get('model_type') != 'DistillVSRModel':
        return
    from types import SimpleNamespace

    from stdsr.models.distill_vsr_model import DistillVSRModel
    try:
        DistillVSRModel._checked_distill_opt(SimpleNamespace(opt=opt))
    except OptionError as err:
        raise OptionError(f'{source}: {err}') from None


def schedule_overrides(opt, iters):
    """--force_yml entries that stretch the LR schedule of ``opt`` from its total_iter to ``iters``."""
    train = opt['train']
    total = int(train['total_iter'])
    sched = train.get('scheduler') or {}
    if iters == total or not sched:
        return []
    factor = iters / total

    def scale(values):
        return [max(1, int(round(v * factor))) if v > 0 else 0 for v in values]

    if sched.get('type') == 'CosineAnnealingRestartLR':
        periods = scale(sched['periods'])
        if sum(sched['periods']) >= total and sum(periods) < iters:
            periods[-1] += iters - sum(periods)  # the stretched schedule must still cover the whole budget
        return [f'train:scheduler:periods={periods}']
    entries = [f"train:scheduler:milestones={scale(sched.get('milestones', []))}"]
    if 'restarts' in sched:
        entries.append(f"train:scheduler:restarts={scale(sched['restarts'])}")
    return entries


def run_name(label, seed, iters):
    return f'{label}_seed{seed}_iter{iters}'


def harness_overrides(opt, name, seed, iters, exp_root, settings):
    entries = [f'name={name}', f'manual_seed={seed}', f'train:total_iter={iters}',
               f'path:experiments_root={exp_root}']
    entries += schedule_overrides(opt, iters)
    if not settings['train_val']:
        entries.append('val=~')  # the harness evaluates every run itself, on one test set
    if settings['teacher_ckpt'] and 'network_t' in opt:
        entries.append(f"path:pretrain_network_t={osp.abspath(settings['teacher_ckpt'])}")
    return entries


def load_run_options(path, user_entries, source=None):
    """Load, override and validate one option file (errors name the file)."""
    source = source or path
    if not osp.isfile(path):
        raise CompareError(f'option file not found: {path}')
    opt = load_yaml(path)
    applied = apply_overrides(opt, user_entries, source)
    validate_options(opt, is_train=True, source=source)
    check_distill_section(opt, source)
    return opt, applied


def _folder_test_set(name, gt, lq):
    return OrderedDict(name=name, type='GenericVideoTestDataset', dataroot_gt=gt, dataroot_lq=lq,
                       io_backend={'type': 'disk'})


def eval_datasets(opt, settings, source):
    """The test sets every run is evaluated on, by name: --test-set(s), --test-gt/--test-lq or datasets.val."""
    if settings.get('test_sets'):
        return OrderedDict((name, _folder_test_set(name, gt, lq)) for name, (gt, lq) in settings['test_sets'].items())
    if settings['test_gt']:
        name = osp.basename(osp.normpath(settings['test_gt'])) or 'test'
        return OrderedDict([(name, _folder_test_set(name, settings['test_gt'], settings['test_lq']))])
    val = (opt.get('datasets') or {}).get('val')
    if not val:
        raise CompareError(f"{source}: no datasets.val to evaluate on; give --test-set or --test-gt and --test-lq")
    return OrderedDict([(val.get('name', 'val'), deepcopy(val))])


def data_signature(opt, test):
    """What must be equal across runs: scale, the training data and crops, and the test set."""

    def norm(section):
        out = {}
        for key, value in (section or {}).items():
            if key in PERFORMANCE_KEYS:
                continue
            out[key] = osp.abspath(value) if key in PATH_KEYS and isinstance(value, str) else value
        return plain(out)

    return {'scale': opt.get('scale'), 'train': norm(opt['datasets']['train']),
            'test': {name: norm(section) for name, section in test.items()}}


def check_same_data(runs):
    first = runs[0]
    for run in runs[1:]:
        if run['signature'] == first['signature']:
            continue
        diffs = []
        for part in ('scale', 'train', 'test'):
            a, b = first['signature'][part], run['signature'][part]
            if isinstance(a, dict) and isinstance(b, dict):
                diffs += [f'{part}.{k}: {a.get(k)!r} vs {b.get(k)!r}' for k in sorted(set(a) | set(b))
                          if a.get(k) != b.get(k)]
            elif a != b:
                diffs.append(f'{part}: {a!r} vs {b!r}')
        raise CompareError(f"runs must use the same data, but {first['opt_path']} and {run['opt_path']} differ in "
                           + '; '.join(diffs) + ' (datasets.train, scale and the test set must match)')


def resolve_iters(runs, iters):
    if iters is not None:
        return int(iters)
    totals = {int(run['opt']['train']['total_iter']) for run in runs}
    if len(totals) > 1:
        raise CompareError('the option files have different train.total_iter ' +
                           ', '.join(f"{r['opt_path']}: {r['opt']['train']['total_iter']}" for r in runs) +
                           '; give --iters so every run gets the same budget')
    return totals.pop()


def prepare_runs(settings):
    """Load every option file (failing before anything is trained) and check they share their data."""
    runs = []
    baseline = osp.abspath(settings['baseline']) if settings['baseline'] else None
    missing = [e['opt'] for e in settings['runs'] if not osp.isfile(e['opt'])]
    if missing:
        raise CompareError('option file(s) not found: ' + ', '.join(missing))
    for entry in settings['runs']:
        opt, applied = load_run_options(entry['opt'], settings['force_yml'])
        test = eval_datasets(opt, settings, entry['opt'])
        runs.append({'label': entry['label'], 'opt_path': osp.abspath(entry['opt']), 'opt': opt, 'user_force': applied,
                     'test': test, 'signature': data_signature(opt, test),
                     'is_baseline': osp.abspath(entry['opt']) == baseline})
    check_same_data(runs)
    return runs


# ------------------------------------------------------------------------------------------------ teacher
def resolve_teacher(runs, settings):
    """(network options, checkpoint, temporal mode or None) of the teacher, or None when there is none."""
    with_teacher = [r for r in runs if 'network_t' in r['opt']]
    nets = {digest(r['opt']['network_t']) for r in with_teacher}
    if len(nets) > 1:
        raise CompareError('the distilled runs use different teachers (network_t differs): ' +
                           ', '.join(r['opt_path'] for r in with_teacher))
    ckpt = settings['teacher_ckpt']
    if not ckpt:
        ckpts = {osp.abspath(r['opt']['path']['pretrain_network_t']) for r in with_teacher
                 if (r['opt'].get('path') or {}).get('pretrain_network_t')}
        if len(ckpts) > 1:
            raise CompareError(f'the distilled runs use different teacher checkpoints {sorted(ckpts)}; give '
                               '--teacher-ckpt so that every run learns from the same teacher')
        ckpt = ckpts.pop() if ckpts else None
    if with_teacher:
        net_opt = with_teacher[0]['opt']['network_t']
        temporal = (with_teacher[0]['opt'].get('temporal') or {}).get('network_t')
    elif settings['teacher_opt']:
        teacher_opt = load_yaml(settings['teacher_opt'])
        if 'network_g' not in teacher_opt:
            raise CompareError(f"{settings['teacher_opt']}: no network_g to use as the teacher")
        net_opt = teacher_opt['network_g']
        temporal = (teacher_opt.get('temporal') or {}).get('network_g')
    else:
        return None
    if not ckpt:
        return None
    if not osp.isfile(ckpt):
        raise CompareError(f'teacher checkpoint not found: {ckpt}')
    return {'network': plain(net_opt), 'ckpt': osp.abspath(ckpt), 'temporal': temporal}


# ------------------------------------------------------------------------------------------------ train / eval
def launch_command(opt_path, entries, nproc):
    if nproc and int(nproc) > 1:
        return [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={int(nproc)}',
                '-m', 'stdsr.train', '-opt', opt_path, '--auto_resume', '--launcher', 'pytorch', '--force_yml',
                *entries]
    return [sys.executable, '-m', 'stdsr.train', '-opt', opt_path, '--auto_resume', '--force_yml', *entries]


def train_run(run, entries, run_dir, nproc):
    """``python -m stdsr.train`` in a subprocess (resuming an interrupted run); its output goes to a log file."""
    log_path = osp.join(run_dir, 'train_stdout.log')
    os.makedirs(run_dir, exist_ok=True)
    cmd = launch_command(run['opt_path'], entries, nproc)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'a') as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise CompareError(f"run '{osp.basename(run_dir)}' ({run['opt_path']}) failed with exit code "
                           f'{proc.returncode}; last lines of {log_path}:\n{log_tail(log_path)}')


def metrics_options(opt):
    """PSNR and SSIM on Y with the option file's crop border (0 if it has none)."""
    metrics = ((opt.get('val') or {}).get('metrics') or {})
    crop = next((m.get('crop_border') for m in metrics.values() if 'crop_border' in m), 0)
    return OrderedDict(psnr={'type': 'calculate_psnr', 'crop_border': crop, 'test_y_channel': True},
                       ssim={'type': 'calculate_ssim', 'crop_border': crop, 'test_y_channel': True})


class _QuietConsole:
    """Keep BasicSR's console logging at warnings while ``stdsr.test`` runs in this process (its log file keeps all)."""

    def __enter__(self):
        import logging

        from basicsr.utils import get_root_logger
        self.handlers = [(h, h.level) for h in get_root_logger().handlers if type(h) is logging.StreamHandler]
        for handler, _ in self.handlers:
            handler.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc):
        for handler, level in self.handlers:
            handler.setLevel(level)
        return False


def evaluate(name, network, temporal, ckpt, param_key, tests, metrics, scale, out_dir, num_gpu='auto'):
    """Evaluate one network on the test sets ``{name: dataset options}`` with ``stdsr.test`` in one call.

    Returns ``{test set name: {'dataset', 'average', 'per_clip'}}`` (log and metrics.md under ``out_dir``).
    """
    from stdsr.test import test_pipeline

    os.makedirs(out_dir, exist_ok=True)
    test_opt = {
        'name': name, 'model_type': 'ClipVSRModel', 'scale': scale, 'num_gpu': num_gpu,
        'datasets': {f'test_{i + 1}': plain(test) for i, test in enumerate(tests.values())},
        'network_g': plain(network),
        'path': {'pretrain_network_g': ckpt, 'param_key_g': param_key, 'strict_load_g': True,
                 'results_root': osp.join(out_dir, 'results')},
        'val': {'save_img': False, 'metrics': plain(metrics)},
    }
    if temporal:
        test_opt['temporal'] = {'network_g': temporal}
    opt_path = osp.join(out_dir, 'test.yml')
    write_atomic(opt_path, yaml.safe_dump(test_opt, sort_keys=False))
    try:
        with _QuietConsole(), contextlib.redirect_stdout(io.StringIO()):  # its table is in metrics.md
            results = test_pipeline(['-opt', opt_path], root_path=out_dir)
    except Exception as err:  # noqa: BLE001  (any failure of one evaluation is reported with its cause)
        raise CompareError(f"evaluation of '{name}' ({opt_path}) failed: {type(err).__name__}: {err}") from err
    finally:
        if 'torch' in sys.modules and sys.modules['torch'].cuda.is_available():
            sys.modules['torch'].cuda.empty_cache()  # the next training runs in another process
    by_set = OrderedDict()
    for set_name, result in zip(tests, results):
        if not result.get('average'):
            raise CompareError(f"evaluation of '{name}' on {set_name} gave no metrics: does it have GT frames?")
        by_set[set_name] = plain(result)
    return by_set


def checkpoint_of(exp_root, opt):
    ckpt = osp.join(exp_root, 'models', 'net_g_latest.pth')
    param_key = 'params_ema' if (opt['train'].get('ema_decay') or 0) > 0 else 'params'
    return ckpt, param_key


def do_run(run, seed, iters, settings, report):
    """Train (or resume) and evaluate one run unless its result is already there; returns the result dict."""
    name = run_name(run['label'], seed, iters)
    run_dir = osp.join(settings['work_dir'], 'runs', name)
    exp_root = osp.join(run_dir, 'train')
    entries = run['user_force'] + harness_overrides(run['opt'], name, seed, iters, exp_root, settings)
    opt = load_yaml(run['opt_path'])
    apply_force_yml(opt, entries)
    where = deepcopy(opt)
    where['path'].pop('experiments_root', None)  # the configuration, not where it is stored
    config = {'opt': digest(where), 'data': digest(run['signature']), 'seed': seed, 'iters': iters}
    result_path = osp.join(run_dir, 'result.json')
    if osp.isfile(result_path):
        result = read_json(result_path)
        if result.get('config') != config:
            raise CompareError(f'{result_path} holds a finished run with another configuration (option file, '
                               'overrides or data changed since); use another --work-dir or move that folder away')
        report['reused'].append(name)
        return result
    done_path = osp.join(run_dir, 'train_done.json')
    ckpt, param_key = checkpoint_of(exp_root, opt)
    if not (osp.isfile(done_path) and read_json(done_path).get('config') == config and osp.isfile(ckpt)):
        print(f'[compare] training {name} ({run["opt_path"]})', flush=True)
        start = time.time()
        train_run(run, entries, run_dir, settings['nproc'])
        write_json_atomic(done_path, {'config': config, 'train_seconds': time.time() - start})
        report['trained'].append(name)
    print(f'[compare] evaluating {name}', flush=True)
    evals = evaluate(name, opt['network_g'], (opt.get('temporal') or {}).get('network_g'), ckpt, param_key,
                     run['test'], metrics_options(run['opt']), opt.get('scale'), osp.join(run_dir, 'eval'))
    result = {'label': run['label'], 'opt_file': run['opt_path'], 'seed': seed, 'iters': iters, 'config': config,
              'baseline': run['is_baseline'], **eval_fields(evals), 'checkpoint': ckpt,
              'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_json_atomic(result_path, result)
    report['evaluated'].append(name)
    return result


def eval_fields(evals):
    """Result fields: every test set under 'evals'; the first one also as 'dataset'/'metrics'/'per_clip'."""
    first = next(iter(evals.values()))
    return {'evals': {name: {'dataset': res['dataset'], 'metrics': res['average'], 'per_clip': res['per_clip']}
                      for name, res in evals.items()},
            'dataset': first['dataset'], 'metrics': first['average'], 'per_clip': first['per_clip']}


def do_teacher(teacher, run, settings, report):
    """Evaluate the teacher once (cached in teacher/result.json, keyed by checkpoint and test set)."""
    stat = os.stat(teacher['ckpt'])
    config = {'ckpt': teacher['ckpt'], 'size': stat.st_size, 'mtime': stat.st_mtime,
              'network': digest(teacher['network']), 'test': digest(run['signature']['test'])}
    out_dir = osp.join(settings['work_dir'], 'teacher')
    result_path = osp.join(out_dir, 'result.json')
    if osp.isfile(result_path) and read_json(result_path).get('config') == config:
        report['reused'].append('teacher')
        return read_json(result_path)
    print(f"[compare] evaluating the teacher ({teacher['ckpt']})", flush=True)
    evals = evaluate('teacher', teacher['network'], teacher['temporal'], teacher['ckpt'], 'params', run['test'],
                     metrics_options(run['opt']), run['opt'].get('scale'), out_dir)
    result = {'label': 'teacher', 'config': config, **eval_fields(evals),
              'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_json_atomic(result_path, result)
    report['evaluated'].append('teacher')
    return result


# ------------------------------------------------------------------------------------------------ summary
def mean_std(values):
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def summarize(results, baseline_label=None, teacher_metrics=None, metrics=('psnr', 'ssim')):
    """Rows per method: mean/std over seeds, gain over the baseline and share of the teacher-student gap closed.

    ``results``: [{'label', 'seed', 'metrics': {name: value}}]. The gain is the mean over seeds of the paired
    (same seed) differences to the baseline; the gap closed is (method - baseline) / (teacher - baseline) on the
    seed means, None when there is no teacher or baseline, or the teacher is not better than the baseline.
    """
    by_label = OrderedDict()
    for res in results:
        by_label.setdefault(res['label'], {})[res['seed']] = res['metrics']
    base = by_label.get(baseline_label) if baseline_label else None
    rows = []
    for label, per_seed in by_label.items():
        row = {'label': label, 'role': 'baseline' if label == baseline_label else 'student',
               'seeds': sorted(per_seed)}
        for m in metrics:
            row[m] = mean_std([v[m] for v in per_seed.values() if m in v])
            gain = gap = None
            if base is not None:
                paired = [per_seed[s][m] - base[s][m] for s in per_seed if s in base and m in per_seed[s]]
                gain = mean_std(paired) if paired else None
                if teacher_metrics and m in teacher_metrics and row[m][0] is not None:
                    base_mean = mean_std([v[m] for v in base.values()])[0]
                    span = teacher_metrics[m] - base_mean
                    gap = (row[m][0] - base_mean) / span if span > 0 else None
            row[f'gain_{m}'] = gain
            row[f'gap_{m}'] = gap
        rows.append(row)
    if teacher_metrics:
        rows.append({'label': 'teacher', 'role': 'teacher', 'seeds': [],
                     **{m: (teacher_metrics.get(m), 0.0) for m in metrics},
                     **{f'gain_{m}': None for m in metrics}, **{f'gap_{m}': None for m in metrics}})
    return rows


def paired_differences(results, baseline_label, metric='psnr'):
    """Per method: the same-seed differences to the baseline, how many seeds are ahead, and their mean.

    A gain is only worth reporting against the baseline's own seed-to-seed spread (``baseline_spread``: the sample
    standard deviation of the baseline over seeds), so both are returned.
    """
    by_label = OrderedDict()
    for res in results:
        by_label.setdefault(res['label'], {})[res['seed']] = res['metrics'][metric]
    base = by_label.get(baseline_label) or {}
    rows = []
    for label, per_seed in by_label.items():
        if label == baseline_label:
            continue
        diffs = OrderedDict((seed, per_seed[seed] - base[seed]) for seed in sorted(per_seed) if seed in base)
        rows.append({'label': label, 'diffs': diffs, 'ahead': sum(d > 0 for d in diffs.values()),
                     'mean': mean_std(list(diffs.values()))[0]})
    return {'rows': rows, 'baseline_spread': mean_std(list(base.values()))[1]}


def format_paired(paired, metric='PSNR-Y'):
    """Markdown: one row per method with its per-seed difference to the baseline, seeds ahead and the mean."""
    seeds = sorted({seed for row in paired['rows'] for seed in row['diffs']})
    lines = [f'Paired {metric} difference to the baseline (same seed), dB:', '',
             '| method | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | ahead | mean |',
             '|---|' + '--:|' * (len(seeds) + 2)]
    for row in paired['rows']:
        cells = [f"{row['diffs'][s]:+.3f}" if s in row['diffs'] else '—' for s in seeds]
        mean = f"{row['mean']:+.3f}" if row['mean'] is not None else '—'
        lines.append(f"| {row['label']} | " + ' | '.join(cells) + f" | {row['ahead']}/{len(row['diffs'])} | {mean} |")
    spread = paired['baseline_spread']
    if spread is not None:
        lines += ['', f'Seed-to-seed spread of the baseline (std): {spread:.3f} dB. A mean gain below it is not a gain.']
    return '\n'.join(lines) + '\n'


def _fmt(pair, digits, signed=False):
    if pair is None or pair[0] is None:
        return '—'
    mean, std = pair
    text = f'{mean:+.{digits}f}' if signed else f'{mean:.{digits}f}'
    return text + (f' ± {std:.{digits}f}' if std else '')


def format_table(rows, dataset='', iters=None):
    lines = []
    if dataset:
        lines.append(f'Test set: {dataset}' + (f'; {iters} iterations per run' if iters else '') + '\n')
    lines += ['| method | role | seeds | PSNR-Y (dB) | SSIM-Y | ΔPSNR vs baseline | ΔSSIM vs baseline | '
              'gap closed (PSNR) | gap closed (SSIM) |', '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        role = {'baseline': '**baseline**', 'teacher': '*teacher (reference)*'}.get(row['role'], '')
        seeds = ', '.join(str(s) for s in row['seeds']) or '—'
        gaps = [f'{row[f"gap_{m}"] * 100:.1f}%' if row[f'gap_{m}'] is not None else '—' for m in ('psnr', 'ssim')]
        lines.append(f"| {row['label']} | {role} | {seeds} | {_fmt(row['psnr'], 3)} | {_fmt(row['ssim'], 4)} | "
                     f"{_fmt(row['gain_psnr'], 3, True)} | {_fmt(row['gain_ssim'], 4, True)} | {gaps[0]} | "
                     f'{gaps[1]} |')
    return '\n'.join(lines) + '\n'


def plot_chart(rows, path):
    """Bars of PSNR-Y and SSIM-Y (mean, std error bars); baseline grey, teacher dark, dashed baseline level."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r['psnr'][0] is not None]
    colors = ['0.6' if r['role'] == 'baseline' else '0.2' if r['role'] == 'teacher' else 'tab:blue' for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.1 * len(rows) + 3), 4.2))
    for ax, metric, title in ((axes[0], 'psnr', 'PSNR-Y (dB)'), (axes[1], 'ssim', 'SSIM-Y')):
        means = [r[metric][0] for r in rows]
        stds = [r[metric][1] or 0.0 for r in rows]
        ax.bar(range(len(rows)), means, yerr=stds, color=colors, capsize=3)
        base = [r[metric][0] for r in rows if r['role'] == 'baseline']
        if base:
            ax.axhline(base[0], color='0.4', linestyle='--', linewidth=1)
        low, high = min(m - s for m, s in zip(means, stds)), max(m + s for m, s in zip(means, stds))
        pad = max((high - low) * 0.3, 1e-3 if metric == 'ssim' else 0.05)
        ax.set_ylim(low - pad, high + pad)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r['label'] for r in rows], rotation=35, ha='right', fontsize=8)
        ax.set_title(title)
    fig.tight_layout()
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.chart.', suffix='.png', dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if osp.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------------------------------------ main
def run_comparison(settings):
    """Train/evaluate every (run, seed), then write comparison.{md,json,png}; returns a report dict."""
    runs = prepare_runs(settings)
    iters = resolve_iters(runs, settings['iters'])
    teacher = resolve_teacher(runs, settings)
    os.makedirs(settings['work_dir'], exist_ok=True)
    report = {'trained': [], 'reused': [], 'evaluated': [], 'failed': []}
    results = []
    for seed in settings['seeds']:
        for run in runs:
            try:
                results.append(do_run(run, seed, iters, settings, report))
            except CompareError as err:
                if not settings['keep_going']:
                    raise
                report['failed'].append(str(err))
                print(f'[compare] {err}', file=sys.stderr, flush=True)
    teacher_result = do_teacher(teacher, runs[0], settings, report) if teacher else None
    baseline_label = next((r['label'] for r in runs if r['is_baseline']), None)
    sections, per_set = [], OrderedDict()
    for index, set_name in enumerate(runs[0]['test']):
        set_results = [{**res, 'metrics': res['evals'][set_name]['metrics']} for res in results]
        teacher_metrics = teacher_result['evals'][set_name]['metrics'] if teacher_result else None
        rows = summarize(set_results, baseline_label, teacher_metrics)
        paired = paired_differences(set_results, baseline_label) if baseline_label else None
        sections.append(format_table(rows, set_name, iters) + ('\n' + format_paired(paired) if paired else ''))
        per_set[set_name] = {'rows': rows, 'paired': paired}
        if rows:
            plot_chart(rows, osp.join(settings['work_dir'], 'comparison.png' if index == 0 else
                                      f'comparison_{set_name}.png'))
    table = '\n'.join(sections)
    write_atomic(osp.join(settings['work_dir'], 'comparison.md'), table)
    first = next(iter(per_set.values()), {'rows': []})
    write_json_atomic(osp.join(settings['work_dir'], 'comparison.json'),
                      {'iters': iters, 'seeds': settings['seeds'], 'rows': first['rows'], 'test_sets': per_set,
                       'runs': results, 'teacher': teacher_result})
    print(table, flush=True)
    print(f"[compare] trained {len(report['trained'])}, reused {len(report['reused'])}, evaluated "
          f"{len(report['evaluated'])}, failed {len(report['failed'])}; reports in {settings['work_dir']}", flush=True)
    if report['failed']:
        raise CompareError(f"{len(report['failed'])} run(s) failed:\n" + '\n\n'.join(report['failed']))
    return report


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    try:
        run_comparison(resolve_settings(args))
    except (CompareError, OptionError) as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
