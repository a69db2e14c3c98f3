"""The comparison harness's budget axis and plateau flags (used by :mod:`stdsr.tools.comparison`).

A distillation gain measured at one short budget can shrink or vanish at a longer one, and a baseline stuck on
its bicubic plateau makes any method look good. So a plan may list ``budgets`` (each run is trained per budget,
its cosine schedule stretched to that budget), the report gives every method's paired gain against the budget
(a table and a plot per test set), and every run that ends within ``PLATEAU_DB`` of the test set's bicubic
up-sampling (the residual students' own path, :mod:`stdsr.tools.comparison.plateau`) is flagged next to its gain.
"""
from collections import OrderedDict
from os import path as osp

from stdsr.utils.atomic_files import save_figure_atomic
from stdsr.tools.comparison.plateau import PLATEAU_DB, bicubic_psnr, on_plateau
from stdsr.tools.comparison.seed_stats import mean_std

FLAG = '⚑'


def resolve_budgets(budgets, iters, source='--budgets'):
    """The sorted, distinct, positive budgets, or None when the plan has no budget axis (``iters`` then rules)."""
    if budgets is None:
        return None
    if iters is not None:
        raise ValueError(f'give either {source} or iters, not both')
    if isinstance(budgets, (int, str)) or not budgets:
        raise ValueError(f'{source} must be a non-empty list of iteration counts, got {budgets!r}')
    try:
        values = [int(b) for b in budgets]
    except (TypeError, ValueError):
        raise ValueError(f'{source} must be a list of iteration counts, got {budgets!r}') from None
    if min(values) < 1 or len(set(values)) != len(values):
        raise ValueError(f'{source} must be distinct positive iteration counts, got {budgets!r}')
    return sorted(values)


def bicubic_references(tests, scale, crop_border=0, impl='torch'):
    """{test set: bicubic PSNR-Y} for the folder test sets (None where a set is not a GT/LQ folder pair); ``impl``
    names the resampler (:func:`stdsr.tools.comparison.plateau.bicubic_psnr`)."""
    refs = OrderedDict()
    for name, test in tests.items():
        gt, lq = test.get('dataroot_gt'), test.get('dataroot_lq')
        if (test.get('io_backend') or {}).get('type', 'disk') != 'disk' or not (gt and lq and osp.isdir(lq)):
            refs[name] = None
            continue
        refs[name] = bicubic_psnr(gt, lq, int(scale), crop_border, impl)['average']
    return refs


def plateau_runs(set_results, bicubic, margin=PLATEAU_DB):
    """{label: [seeds]} of the runs whose PSNR is within ``margin`` dB of ``bicubic`` (empty without one)."""
    flagged = OrderedDict()
    if bicubic is None:
        return flagged
    for res in set_results:
        if on_plateau(res['metrics'].get('psnr'), bicubic, margin):
            flagged.setdefault(res['label'], []).append(res['seed'])
    return flagged


def plateau_note(bicubic, flagged, margin=PLATEAU_DB, matlab=None):
    """The lines under a test set's table: its bicubic PSNR (each named by its resampler) and which runs sit on the
    students' own one."""
    if bicubic is None:
        return ''
    text = (f'Bicubic up-sampling of this set (`F.interpolate` bicubic, the residual students\' own path): '
            f'{bicubic:.3f} dB' + (f'; MATLAB-style bicubic (the paper\'s and `make demo`\'s "Bicubic" row): '
                                   f'{matlab:.3f} dB' if matlab is not None else '') + '. ')
    if not flagged:
        return text + f'No run ended within {margin} dB of it.\n'
    runs = '; '.join(f"{label} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                     for label, seeds in flagged.items())
    return text + (f'{FLAG} **plateau** (ended within {margin} dB of it, the residual branch learnt next to '
                   f'nothing): {runs}. A gain over a plateau baseline is not transferred knowledge.\n')


def gain_flag(label, seeds, flagged, baseline_label):
    """' ⚑ plateau: ...' for a row whose own seeds or whose baseline seeds are on the plateau."""
    own = [s for s in flagged.get(label, []) if s in seeds]
    base = [s for s in flagged.get(baseline_label, []) if s in seeds] if label != baseline_label else []
    parts = ([f"seed{'s' if len(own) > 1 else ''} {', '.join(map(str, own))}"] if own else []) + (
        [f"baseline seed{'s' if len(base) > 1 else ''} {', '.join(map(str, base))}"] if base else [])
    return f' {FLAG} plateau: ' + '; '.join(parts) if parts else ''


def gains_by_budget(per_budget, set_name):
    """{method: [(budget, mean paired gain, std, seeds ahead, seeds)]} of one test set over the budgets."""
    table = OrderedDict()
    for iters, per_set in per_budget.items():
        paired = (per_set.get(set_name) or {}).get('paired')
        if not paired:
            continue
        for row in paired['rows']:
            diffs = list(row['diffs'].values())
            if not diffs:
                continue
            mean, std = mean_std(diffs)
            table.setdefault(row['label'], []).append((iters, mean, std, row['ahead'], len(diffs)))
    return table


def format_gains_by_budget(per_budget, set_name):
    """Markdown: per method, the paired PSNR-Y gain over the baseline at every budget (and the baseline spread)."""
    gains = gains_by_budget(per_budget, set_name)
    budgets = list(per_budget)
    if not gains:
        return ''
    lines = [f'Gain against budget on {set_name}: paired PSNR-Y difference to the baseline (same seed, same budget), '
             'mean ± std over seeds (seeds ahead), dB:', '',
             '| method | ' + ' | '.join(f'{b} it' for b in budgets) + ' |', '|---|' + '--:|' * len(budgets)]
    for label, points in gains.items():
        by_iters = {p[0]: p for p in points}
        cells = [f'{by_iters[b][1]:+.3f} ± {by_iters[b][2]:.3f} ({by_iters[b][3]}/{by_iters[b][4]})'
                 if b in by_iters else '—' for b in budgets]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    spreads = []
    for b in budgets:
        paired = (per_budget[b].get(set_name) or {}).get('paired') or {}
        spread = paired.get('baseline_spread')
        spreads.append(f'{spread:.3f}' if spread is not None else '—')
    lines.append('| *baseline spread (std)* | ' + ' | '.join(spreads) + ' |')
    return '\n'.join(lines) + '\n'


def plot_gains_by_budget(per_budget, set_name, path):
    """Gain (mean, std error bars) against budget, one line per method, log-scaled budget axis."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    gains = gains_by_budget(per_budget, set_name)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for label, points in gains.items():
        xs, means, stds = [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]
        ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3, label=label)
    ax.axhline(0.0, color='0.4', linestyle='--', linewidth=1)
    ax.set_xscale('log')
    ax.set_xticks(list(per_budget))
    ax.set_xticklabels([str(b) for b in per_budget])
    ax.set_xlabel('iterations per run')
    ax.set_ylabel('PSNR-Y gain over the baseline (dB)')
    ax.set_title(f'gain against budget: {set_name}')
    if gains:  # a legend without a method line would only be matplotlib's warning
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        save_figure_atomic(fig, path, dpi=120)
    finally:
        plt.close(fig)
