"""The comparison's plan: the command line and plan file, the settings they resolve to, and each run's option
file as the harness rewrites it (name, seed, budget, schedule, test sets), with the check that every run uses the
same data.
"""
import argparse
import hashlib
import json
from collections import OrderedDict
from copy import deepcopy
from os import path as osp

from stdsr.config.yaml_reader import read_yaml_file, yaml_value
from stdsr.errors import CompareError
from stdsr.config.schema import MAX_SEED, plain_name_problem
from stdsr.config.options import OptionError, apply_force_yml, load_yaml, validate_options
from stdsr.tools.comparison import budget_axis


# dataset keys that change speed, not data
PERFORMANCE_KEYS = {'name', 'num_worker_per_gpu', 'prefetch_mode', 'pin_memory', 'persistent_workers', 'phase'}
PATH_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file')
LOG_TAIL_LINES = 40
PLAN_KEYS = {'runs', 'baseline', 'seeds', 'iters', 'budgets', 'work_dir', 'teacher_ckpt', 'teacher_opt', 'force_yml',
             'test_gt', 'test_lq', 'test_sets', 'train_val', 'keep_going', 'nproc', 'records', 'paired_to'}
RUN_KEYS = {'opt', 'label', 'budgets', 'force_yml'}


# ------------------------------------------------------------------------------------------------ small helpers
def read_json(path, what='result'):
    """A JSON object the harness wrote (atomically: a result, a record); anything else is one line naming the file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise CompareError(f'{path} is not a readable {what} ({err}); the harness writes it whole, so it was cut '
                           'or edited since: remove it to evaluate that run again') from None
    if not isinstance(data, dict):
        raise CompareError(f'{path} holds a JSON {type(data).__name__}, not a {what}: remove it to evaluate that run '
                           'again')
    return data


def plain(obj):
    """OrderedDicts (BasicSR's YAML loader) -> plain dicts/lists, for hashing and dumping."""
    return json.loads(json.dumps(obj))


def portable(obj):
    """``obj`` with every absolute path made relative to the working directory, so that a configuration digest
    is the same in every clone of the project (committed run records are matched by it)."""
    if isinstance(obj, dict):
        return {key: portable(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [portable(value) for value in obj]
    if isinstance(obj, str) and osp.isabs(obj):
        return osp.relpath(obj)
    return obj


def digest(obj):
    return hashlib.sha256(json.dumps(portable(plain(obj)), sort_keys=True).encode()).hexdigest()[:16]


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
    parser.add_argument('--budgets', nargs='+', type=int, default=None, help='a budget axis instead of --iters: '
                        'every run is trained once per budget, its LR schedule stretched to it; the report adds '
                        'the gain against budget (gain_vs_budget.md and a plot per test set)')
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
    parser.add_argument('--only', nargs='+', default=None, metavar='LABEL', help='train and report only these runs '
                        "(labels of the plan's runs), e.g. to share a plan between processes or machines; a later "
                        'call without --only reuses their results')
    parser.add_argument('--records', default=None, help='folder of committed run records (<run name>.json): a '
                        'finished run writes its record there, and a matching record is reused instead of training, '
                        'so a study continues across sessions and clones (docs/distillation_methods.md)')
    parser.add_argument('--paired-to', nargs='+', default=None, metavar='LABEL', help='also pair every other '
                        'method with these runs, seed by seed (e.g. output_KD: is STD ahead of the KD baseline, not '
                        'only of the plain student?)')
    parser.add_argument('--report-only', action='store_true', help='train nothing: write the reports from the '
                        'runs that have finished (the others are listed as not run), e.g. for a study whose runs were '
                        'split over processes with --only/--budgets/--seeds')
    return parser


def resolve_settings(args):
    """Merge the plan file (if any) with the command line; flags win. Relative plan paths are from the cwd."""
    plan = {}
    if args.plan:
        if not osp.isfile(args.plan):
            raise CompareError(f'plan file not found: {args.plan}')
        plan = read_yaml_file(args.plan, CompareError, 'plan file') or {}
        if not isinstance(plan, dict):
            raise CompareError(f'{args.plan}: a plan must be a mapping')
        unknown = sorted(set(plan) - PLAN_KEYS)
        if unknown:
            raise CompareError(f'{args.plan}: unknown plan key(s) {unknown}; known: {sorted(PLAN_KEYS)}')
    check_plan_values(plan, args.plan)
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
        'budgets': args.budgets if args.budgets is not None else plan.get('budgets'),
        'work_dir': osp.abspath(args.work_dir or plan.get('work_dir') or osp.join('experiments', 'compare')),
        'teacher_ckpt': args.teacher_ckpt or plan.get('teacher_ckpt'),
        'teacher_opt': args.teacher_opt or plan.get('teacher_opt'),
        'force_yml': list(plan.get('force_yml') or []) + list(args.force_yml or []),
        'test_gt': args.test_gt or plan.get('test_gt'),
        'test_lq': args.test_lq or plan.get('test_lq'),
        'train_val': args.train_val or bool(plan.get('train_val')),
        'keep_going': args.keep_going or bool(plan.get('keep_going')),
        'nproc': args.nproc or plan.get('nproc'),
        'report_only': bool(getattr(args, 'report_only', False)),
        'records': getattr(args, 'records', None) or plan.get('records'),
        'paired_to': getattr(args, 'paired_to', None) or plan.get('paired_to') or [],
    }
    if baseline and osp.abspath(baseline) not in [osp.abspath(e['opt']) for e in entries]:
        entries.insert(0, {'opt': baseline})
    for entry in entries:
        unknown = sorted(set(entry) - RUN_KEYS)
        if unknown or 'opt' not in entry:
            raise CompareError(f"plan run {entry}: expected {{opt: FILE, label: NAME, budgets: [ITERS, ...], "
                               f"force_yml: [KEY=VALUE, ...]}}, got keys {sorted(entry)}")
        own_force = entry.get('force_yml', [])
        if not isinstance(own_force, list) or not all(isinstance(item, str) and '=' in item for item in own_force):
            raise CompareError(f"plan run {entry.get('label', entry['opt'])}: force_yml must be a list of "
                               f"'KEY=VALUE' strings, got {own_force!r}")
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
    if args.iters is not None and args.budgets is None:
        settings['budgets'] = None  # --iters on the command line wins over a plan's budgets
    try:
        settings['budgets'] = budget_axis.resolve_budgets(settings['budgets'], settings['iters'],
                                                          'budgets' + (f' in {args.plan}' if args.plan else ''))
    except ValueError as err:
        raise CompareError(str(err)) from None
    if bool(settings['test_gt']) != bool(settings['test_lq']):
        raise CompareError('--test-gt and --test-lq go together')
    # a run may be trained at only some of the budgets (e.g. ablations at the shortest); they are checked against
    # the plan's own budgets, so that --budgets on the command line selects among them (a run none of whose
    # budgets is selected is not trained)
    plan_budgets = sorted(set(plan.get('budgets') or []) | set(settings['budgets'] or []))
    for entry in entries:
        if 'budgets' in entry:
            own = entry['budgets']
            if not isinstance(own, list) or not own or not set(own) <= set(plan_budgets):
                raise CompareError(f"plan run {entry['label']}: budgets must be a non-empty list of the plan's "
                                   f"budgets {plan_budgets}, got {own!r}")
    paired_to = settings['paired_to']
    where = '--paired-to' if getattr(args, 'paired_to', None) else f"plan key 'paired_to' in {args.plan}"
    if not isinstance(paired_to, list) or not all(isinstance(label, str) for label in paired_to):
        raise CompareError(f'{where} must be a list of run labels, got {paired_to!r}')
    if sorted(set(paired_to) - set(labels)):
        raise CompareError(f'{where} {sorted(set(paired_to) - set(labels))}: no such run label; the runs are {labels}')
    settings['only'] = args.only
    if args.only:
        unknown = sorted(set(args.only) - set(labels))
        if unknown:
            raise CompareError(f'--only {unknown}: no such run label; the runs are {labels}')
    settings['test_sets'] = parse_test_sets(args.test_set, plan.get('test_sets'), args.plan)
    if settings['test_sets'] and settings['test_gt']:
        raise CompareError('give test sets either as --test-set/test_sets or as --test-gt/--test-lq, not both')
    settings['runs'] = entries
    return settings


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_plan_values(plan, plan_path):
    """The kinds of a plan's values, before any is used (``runs: [7]``, ``seeds: 3`` ended in tracebacks)."""
    def bad(key, expected):
        return CompareError(f'{plan_path}: plan key {key!r} must be {expected}, got {plan[key]!r}')

    runs = plan.get('runs')
    if runs is not None and (not isinstance(runs, list) or not all(
            isinstance(item, str) or isinstance(item, dict) and isinstance(item.get('opt'), str) for item in runs)):
        raise bad('runs', 'a list of option files or {opt: FILE, label: NAME} mappings')
    if plan.get('seeds') is not None and (not isinstance(plan['seeds'], list) or not all(
            _is_int(s) and 0 <= s < MAX_SEED for s in plan['seeds'])):
        raise bad('seeds', f'a list of integers in [0, {MAX_SEED})')
    if plan.get('iters') is not None and not (_is_int(plan['iters']) and plan['iters'] > 0):
        raise bad('iters', 'a positive integer')
    for key in ('budgets', 'force_yml'):
        if plan.get(key) is not None and not isinstance(plan[key], list):
            raise bad(key, 'a list')
    for key in ('baseline', 'work_dir', 'teacher_ckpt', 'teacher_opt', 'test_gt', 'test_lq'):
        if plan.get(key) is not None and not isinstance(plan[key], str):
            raise bad(key, 'a path')


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
    """The distill-section check of option validation (stdsr.config.distill), before anything is trained."""
    if opt.get('model_type') != 'DistillVSRModel':
        return
    from stdsr.config.distill import check_distill_options
    try:
        check_distill_options(opt)
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
        return [f'train:scheduler:periods={yaml_value(periods)}']
    entries = [f"train:scheduler:milestones={yaml_value(scale(sched.get('milestones', [])))}"]
    if 'restarts' in sched:
        entries.append(f"train:scheduler:restarts={yaml_value(scale(sched['restarts']))}")
    return entries


def run_name(label, seed, iters):
    return f'{label}_seed{seed}_iter{iters}'


def harness_overrides(opt, name, seed, iters, exp_root, settings):
    """The harness's --force_yml entries; every value is passed as YAML data (``yaml_value``), never as text that
    YAML would re-parse (a label ``my run #2`` would otherwise train as ``name=my``)."""
    entries = [f'name={yaml_value(name)}', f'manual_seed={yaml_value(seed)}', f'train:total_iter={yaml_value(iters)}',
               f'path:experiments_root={yaml_value(exp_root)}']
    entries += schedule_overrides(opt, iters)
    if not settings['train_val']:
        entries.append('val=~')  # the harness evaluates every run itself, on one test set
    if settings['teacher_ckpt'] and 'network_t' in opt:
        entries.append(f"path:pretrain_network_t={yaml_value(osp.abspath(settings['teacher_ckpt']))}")
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
        # the plan's (and --force-yml's) overrides, then the run's own: one option file can serve two variants
        opt, applied = load_run_options(entry['opt'], settings['force_yml'] + entry.get('force_yml', []))
        test = eval_datasets(opt, settings, entry['opt'])
        runs.append({'label': entry['label'], 'opt_path': osp.abspath(entry['opt']), 'opt': opt, 'user_force': applied,
                     'test': test, 'signature': data_signature(opt, test), 'budgets': entry.get('budgets'),
                     'is_baseline': osp.abspath(entry['opt']) == baseline})
    check_same_data(runs)
    return runs
