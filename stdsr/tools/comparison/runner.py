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
import json
import os
import sys
from collections import OrderedDict
from os import path as osp

import stdsr  # noqa: F401  (patches torchvision for basicsr; registers archs, datasets, losses, models)
from stdsr.errors import CompareError
from stdsr.tools.comparison import budget_axis
from stdsr.utils.atomic_files import write_json_atomic, write_text_atomic
from stdsr.tools.comparison.plan import build_arg_parser, resolve_settings, resolve_iters, prepare_runs, run_name
from stdsr.tools.comparison.runs import (resolve_teacher, metrics_options, evaluate, do_run, do_teacher,
                                      finished_result)
from stdsr.tools.comparison.summary import (summarize, paired_differences, paired_to_references, format_paired,
                                         format_table, plot_chart)


def selected(run, settings):
    """Whether ``--only`` (default: every run) names this run."""
    return not settings.get('only') or run['label'] in settings['only']


def wanted(run, iters, settings):
    """Whether this run is trained at this budget: its own ``budgets`` (default: all) and ``--only``."""
    if run['budgets'] is not None and iters not in run['budgets']:
        return False
    return selected(run, settings)


def run_comparison(settings):
    """Train/evaluate every (budget, run, seed), then write comparison.{md,json,png}; returns a report dict.

    With ``budgets`` every run is trained once per budget and gain_vs_budget.md (with a plot per test set) is
    written too; the per-budget tables are in comparison.md, the longest budget's also in comparison.json's
    ``rows``/``test_sets``. Every table flags the runs that ended on their bicubic plateau.
    """
    runs = prepare_runs(settings)
    budgets = settings.get('budgets') or [resolve_iters(runs, settings['iters'])]
    # --only with no distilled run (e.g. the baselines, while the teacher still trains) needs no teacher
    needs_teacher = not settings.get('only') or any('network_t' in run['opt']
                                                    for run in runs if selected(run, settings))
    teacher = resolve_teacher(runs, settings) if needs_teacher else None
    if not settings.get('report_only'):  # a report-only call finds its work dir or is refused
        os.makedirs(settings['work_dir'], exist_ok=True)
    report = {'trained': [], 'reused': [], 'evaluated': [], 'failed': [], 'not_run': []}
    results = []
    for iters in budgets:
        for seed in settings['seeds']:
            for run in runs:
                if not wanted(run, iters, settings):
                    continue
                if settings.get('report_only'):
                    result = finished_result(run, seed, iters, settings, report)
                    if result is None:
                        report['not_run'].append(run_name(run['label'], seed, iters))
                    else:
                        results.append(result)
                    continue
                try:
                    results.append(do_run(run, seed, iters, settings, report))
                except CompareError as err:
                    if not settings['keep_going']:
                        raise
                    report['failed'].append(str(err))
                    print(f'[compare] {err}', file=sys.stderr, flush=True)
    if settings.get('report_only') and not results:
        raise CompareError(f"--report-only: no finished run of this plan in {settings['work_dir']}" +
                           (f" or {settings['records']}" if settings.get('records') else ''))
    os.makedirs(settings['work_dir'], exist_ok=True)  # a report-only call from records alone writes its reports here
    teacher_result = do_teacher(teacher, runs[0], settings, report) if teacher else None
    baseline_label = next((r['label'] for r in runs if r['is_baseline']), None)
    crop = metrics_options(runs[0]['opt'])['psnr']['crop_border']
    try:
        bicubic = budget_axis.bicubic_references(runs[0]['test'], runs[0]['opt'].get('scale'), crop)
        matlab = budget_axis.bicubic_references(runs[0]['test'], runs[0]['opt'].get('scale'), crop, 'matlab')
    except (OSError, ValueError) as err:
        raise CompareError(f'bicubic reference: {err}') from err
    sections, per_budget = [], OrderedDict()
    for iters in budgets:
        per_set = per_budget.setdefault(iters, OrderedDict())
        if len(budgets) > 1:
            sections.append(f'## {iters} iterations per run\n')
        for index, set_name in enumerate(runs[0]['test']):
            set_results = [{**res, 'metrics': res['evals'][set_name]['metrics']} for res in results
                           if res['iters'] == iters]
            teacher_metrics = teacher_result['evals'][set_name]['metrics'] if teacher_result else None
            rows = summarize(set_results, baseline_label, teacher_metrics)
            paired = paired_differences(set_results, baseline_label) if baseline_label else None
            flagged = budget_axis.plateau_runs(set_results, bicubic[set_name])
            for row in rows:
                row['plateau_seeds'] = flagged.get(row['label'], [])
            note = budget_axis.plateau_note(bicubic[set_name], flagged, matlab=matlab[set_name])
            paired_text = format_paired(paired, flagged=flagged, baseline_label=baseline_label) if paired else ''
            paired_to = paired_to_references(set_results, baseline_label, settings.get('paired_to'),
                                             paired['baseline_spread'] if paired else None)
            for reference, other in paired_to.items():
                paired_text += '\n' + format_paired(other, flagged=flagged, baseline_label=reference, against=reference)
            sections.append(format_table(rows, set_name, iters, flagged, baseline_label) +
                            ('\n' + note if note else '') + ('\n' + paired_text if paired_text else ''))
            per_set[set_name] = {'rows': rows, 'paired': paired, 'paired_to': paired_to,
                                 'bicubic_psnr': bicubic[set_name],
                                 'bicubic_matlab_psnr': matlab[set_name],
                                 'plateau': flagged}
            if rows:
                chart = 'comparison.png' if index == 0 else f'comparison_{set_name}.png'
                if iters != budgets[-1]:
                    chart = chart.replace('.png', f'_iter{iters}.png')
                plot_chart(rows, osp.join(settings['work_dir'], chart))
    if report['not_run']:  # --report-only: say which runs the tables lack
        sections.append(f"Not run (no finished result in this work dir): {', '.join(report['not_run'])}.\n")
    table = '\n'.join(sections)
    write_text_atomic(osp.join(settings['work_dir'], 'comparison.md'), table)
    if len(budgets) > 1 and baseline_label:
        budget_text = []
        for index, set_name in enumerate(runs[0]['test']):
            budget_text.append(budget_axis.format_gains_by_budget(per_budget, set_name))
            budget_axis.plot_gains_by_budget(per_budget, set_name, osp.join(
                settings['work_dir'], 'gain_vs_budget.png' if index == 0 else f'gain_vs_budget_{set_name}.png'))
        write_text_atomic(osp.join(settings['work_dir'], 'gain_vs_budget.md'), '\n'.join(budget_text))
        table += '\n' + '\n'.join(budget_text)
    last = per_budget[budgets[-1]]
    first = next(iter(last.values()), {'rows': []})
    write_json_atomic(osp.join(settings['work_dir'], 'comparison.json'),
                      {'iters': budgets[-1], 'budgets': budgets, 'seeds': settings['seeds'], 'rows': first['rows'],
                       'test_sets': last, 'by_budget': {str(k): v for k, v in per_budget.items()},
                       'runs': results, 'teacher': teacher_result, 'not_run': report['not_run']})
    print(table, flush=True)
    print(f"[compare] trained {len(report['trained'])}, reused {len(report['reused'])}, evaluated "
          f"{len(report['evaluated'])}, failed {len(report['failed'])}, not run {len(report['not_run'])}; reports in "
          f"{settings['work_dir']}", flush=True)
    if report['failed']:
        raise CompareError(f"{len(report['failed'])} run(s) failed:\n" + '\n\n'.join(report['failed']))
    return report

