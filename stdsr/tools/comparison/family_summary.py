"""The paper's summary table over several student families: one row per student, with its cost, its baseline, the
student with STD and with each KD method, and the teacher, from the comparison harness's own outputs.

Each pair (teacher -> one student family) is its own study, with its own plan, baseline and records, so the table
is built from several: a *study* is a committed records folder (``<label>_seed<s>_iter<n>.json`` and
``teacher.json``, :mod:`.records`) or a ``comparison.json`` the harness wrote. A cell is the mean ± sample std
over seeds (the spread) and, for a method, its mean paired difference to the same seed's baseline with the seeds
ahead of it: the numbers the issue's target is stated in. A ✓ marks a method ahead in every seed by more than the
baseline's spread, and run in every seed the baseline was (a study half-way through claims nothing); a ⚑ a run
on its bicubic plateau (known from a ``comparison.json`` only: records do not keep the bicubic reference).
Parameters and runtime per frame are given by the caller (``stdsr.tools.family_table`` measures them with
:mod:`stdsr.tools.profiling.network`).
"""
import glob
from collections import OrderedDict
from dataclasses import dataclass, field
from os import path as osp

from stdsr.errors import CompareError
from stdsr.tools.comparison import budget_axis
from stdsr.tools.comparison.plan import read_json
from stdsr.tools.comparison.records import TEACHER_RECORD
from stdsr.tools.comparison.summary import mean_std, paired_differences
from stdsr.utils.tables import markdown_table

RUN_FIELDS = ('label', 'seed', 'iters', 'evals')
DIGITS = {'psnr': 3, 'ssim': 4}
METRIC_NAMES = {'psnr': 'PSNR-Y (dB)', 'ssim': 'SSIM-Y'}
AHEAD_MARK = '✓'


@dataclass
class Study:
    """One pair's finished runs: ``runs`` as the harness records them (label, seed, iters, evals, baseline flag,
    option file), the teacher's evaluation or None, and the plateau flags {(iters, set): {label: [seeds]}}."""
    student: str
    source: str
    runs: list
    teacher: dict = None
    plateau: dict = field(default_factory=dict)

    def baseline_label(self):
        """``baseline``, or else the first label flagged as the plan's baseline file (a plan may train that file
        under a second label too, e.g. another learning rate: the harness flags both)."""
        flagged = [run['label'] for run in self.runs if run.get('baseline')]
        return 'baseline' if 'baseline' in flagged or not flagged else flagged[0]

    def values(self, label, iters, set_name, metric):
        """{seed: value} of one method at one budget on one test set."""
        return {run['seed']: run['evals'][set_name]['metrics'][metric] for run in self.runs
                if run['label'] == label and run['iters'] == iters and set_name in run['evals']
                and metric in run['evals'][set_name]['metrics']}


def _checked_run(run, where):
    missing = [key for key in RUN_FIELDS if key not in run]
    if missing or not isinstance(run.get('evals'), dict):
        raise CompareError(f'{where}: not a run record of the comparison harness (no {missing or ["evals"]})')
    return run


def load_study(student, source):
    """The :class:`Study` of one pair from a records folder or a ``comparison.json`` (one-line errors name it)."""
    if osp.isdir(source):
        paths = sorted(p for p in glob.glob(osp.join(source, '*.json')) if osp.basename(p) != TEACHER_RECORD)
        runs = [_checked_run(read_json(p, 'run record'), p) for p in paths]
        teacher_path = osp.join(source, TEACHER_RECORD)
        teacher = read_json(teacher_path, 'teacher record') if osp.isfile(teacher_path) else None
        study = Study(student, source, runs, teacher)
    elif osp.isfile(source):
        data = read_json(source, 'comparison report')
        if not isinstance(data.get('runs'), list):
            raise CompareError(f"{source}: no 'runs' list: not a comparison.json of scripts/compare_distillation.py")
        runs = [_checked_run(run, f'{source}: runs[{i}]') for i, run in enumerate(data['runs'])]
        by_budget = data.get('by_budget') or {str(data.get('iters')): data.get('test_sets') or {}}
        plateau = {(int(iters), set_name): per_set.get('plateau') or {}
                   for iters, sets in by_budget.items() if iters != 'None' for set_name, per_set in sets.items()}
        study = Study(student, source, runs, data.get('teacher'), plateau)
    else:
        raise CompareError(f'study {student}: {source} is neither a records folder nor a comparison.json')
    if not study.runs:
        raise CompareError(f'study {student}: {source} holds no finished run')
    return study


def common_budget(studies, iters=None):
    """``iters`` when every study has its baseline there, else the longest budget they all have; an error names
    the study that lacks it."""
    with_baseline = {s.student: {r['iters'] for r in s.runs if r['label'] == s.baseline_label()} for s in studies}
    if iters is not None:
        lacking = [name for name, budgets in with_baseline.items() if iters not in budgets]
        if lacking:
            raise CompareError(f'no baseline run at {iters} iterations in the study of {", ".join(lacking)} '
                               f'(budgets with a baseline: {with_baseline})')
        return iters
    shared = set.intersection(*with_baseline.values()) if with_baseline else set()
    if not shared:
        raise CompareError(f'the studies share no budget with a baseline run: {with_baseline}; give --iters')
    return max(shared)


def common_sets(studies, iters):
    """Test sets every study's baseline was evaluated on at ``iters``, in the first study's order."""
    def sets_of(study):
        return [name for run in study.runs if run['label'] == study.baseline_label() and run['iters'] == iters
                for name in run['evals']]

    first = list(OrderedDict.fromkeys(sets_of(studies[0])))
    return [name for name in first if all(name in sets_of(s) for s in studies[1:])]


def default_methods(studies, iters):
    """Every method label but the baselines: ``STD`` first (the paper's +STD column), then the others in the order
    the studies first name them (records come in file-name order)."""
    labels = OrderedDict()
    for study in studies:
        for run in study.runs:
            if run['iters'] == iters and run['label'] != study.baseline_label() and not run.get('baseline'):
                labels[run['label']] = None
    return sorted(labels, key=lambda label: label != 'STD')


def _fmt(pair, digits, signed=False):
    mean, spread = pair
    text = f'{mean:+.{digits}f}' if signed else f'{mean:.{digits}f}'
    return text + (f' ± {spread:.{digits}f}' if spread else '')


def method_cell(study, label, iters, set_name, metric='psnr'):
    """``mean ± spread (paired mean, ahead/paired[ ✓])`` of one method, '—' when the study lacks it; ⚑ marks a
    method or baseline run on its bicubic plateau."""
    digits = DIGITS.get(metric, 4)
    base_label = study.baseline_label()
    values = study.values(label, iters, set_name, metric)
    if not values:
        return '—'
    text = _fmt(mean_std(list(values.values())), digits)
    flagged = study.plateau.get((iters, set_name), {})
    if label != base_label:
        base = study.values(base_label, iters, set_name, metric)
        runs = [{'label': lab, 'seed': seed, 'metrics': {metric: value}}
                for lab, per_seed in ((base_label, base), (label, values)) for seed, value in per_seed.items()]
        paired = paired_differences(runs, base_label, metric)
        row = paired['rows'][0]
        diffs = list(row['diffs'].values())
        if diffs:
            spread = paired['baseline_spread'] or 0.0
            # every seed means every seed the baseline has: a method half-way through its seeds claims nothing yet
            every_seed = len(diffs) > 1 and len(diffs) == len(base)
            clear = f' {AHEAD_MARK}' if every_seed and all(d > spread for d in diffs) else ''
            text += f" ({row['mean']:+.{digits}f}, {row['ahead']}/{len(diffs)}{clear})"
    return text + budget_axis.gain_flag(label, sorted(values), flagged, base_label)


def teacher_cell(study, set_name, metric='psnr'):
    teacher = study.teacher or {}
    value = (((teacher.get('evals') or {}).get(set_name) or {}).get('metrics') or {}).get(metric)
    return '—' if value is None else f'{value:.{DIGITS.get(metric, 4)}f}'


def format_params(count):
    return '—' if count is None else f'{count:,}'


def format_ms(ms):
    return '—' if ms is None else f'{ms:.1f}'


def family_table(studies, iters=None, sets=None, methods=None, metric='psnr', costs=None, teacher_cost=None):
    """ONE markdown table in the paper's layout over several studies, and the notes under it.

    Args:
        studies (list[Study]): One per student family (:func:`load_study`); their order is the rows' order.
        iters (int | None): The budget (default: the longest every study has, :func:`common_budget`).
        sets (list[str] | None): Test sets (default: those every study has); with more than one, a column
            names the set of each row.
        methods (list[str] | None): Method labels as in the plans (default: every label but the baselines).
        metric (str): 'psnr' or 'ssim'.
        costs (dict | None): {student: (parameters, ms per frame)}; missing ones print as '—'.
        teacher_cost (tuple | None): (label, parameters, ms per frame) of the teacher, shown in a last row per set.
    Returns:
        str: the table, a line per column meaning, and the budget and seeds it covers.
    """
    if not studies:
        raise CompareError('no study given: name at least one --study STUDENT=RECORDS_OR_COMPARISON_JSON')
    iters = common_budget(studies, iters)
    available = common_sets(studies, iters)
    sets = list(sets) if sets else available
    missing = [name for name in sets if name not in available]
    if missing or not sets:
        raise CompareError(f'test set(s) {missing or sets} not in every study at {iters} iterations; they share '
                           f'{available}')
    methods = list(methods) if methods else default_methods(studies, iters)
    known = {run['label'] for study in studies for run in study.runs if run['iters'] == iters}
    unknown = [label for label in methods if label not in known]
    if unknown:  # a typo must not print as a column of '—'
        raise CompareError(f'method(s) {unknown} in no study at {iters} iterations; the labels are {sorted(known)}')
    costs = costs or {}
    many = len(sets) > 1
    header = (['test set'] if many else []) + ['student', 'parameters', 'runtime (ms/frame)', 'baseline'] + \
        [f'+{label}' for label in methods] + ['teacher']
    cells = []
    for set_name in sets:
        for study in studies:
            params, ms = costs.get(study.student, (None, None))
            row = [study.student, format_params(params), format_ms(ms),
                   method_cell(study, study.baseline_label(), iters, set_name, metric)]
            row += [method_cell(study, label, iters, set_name, metric) for label in methods]
            cells.append(([set_name] if many else []) + row + [teacher_cell(study, set_name, metric)])
        if teacher_cost:
            label, params, ms = teacher_cost
            teacher = next((teacher_cell(s, set_name, metric) for s in studies if s.teacher), '—')
            cells.append(([set_name] if many else []) + [f'*{label}*', format_params(params), format_ms(ms)] +
                         ['—'] * (1 + len(methods)) + [teacher])
    seeds = sorted({run['seed'] for s in studies for run in s.runs if run['iters'] == iters})
    lines = markdown_table(header, cells, ('l' if many else '') + 'lrr' + 'r' * (2 + len(methods)))
    lines += ['', f'{METRIC_NAMES.get(metric, metric)}, {iters:,} iterations per run, seeds {seeds}. A cell is the '
              'mean ± sample std over seeds; a method\'s bracket is its mean paired (same-seed) difference to the '
              f'baseline and the seeds ahead of it; {AHEAD_MARK}: ahead in every seed by more than the baseline\'s '
              f'spread, with every seed the baseline has; {budget_axis.FLAG}: a run on its bicubic plateau (from '
              'comparison.json only); teacher: its score on the same set.',
              'Studies: ' + '; '.join(f'{s.student} = {s.source}' for s in studies) + '.']
    return '\n'.join(lines) + '\n'
