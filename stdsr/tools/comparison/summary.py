"""The comparison's statistics and reports: mean and spread over seeds, paired per-seed differences to the
baseline, plateau flags, markdown tables and bar charts.
"""
from collections import OrderedDict

from stdsr.tools.comparison import budget_axis
from stdsr.tools.comparison.seed_stats import mean_std
from stdsr.utils.tables import markdown_table
from stdsr.utils.atomic_files import save_figure_atomic


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


def paired_to_references(results, baseline_label, references, baseline_spread=None):
    """{reference: paired differences of every other method (the baseline left out) to that run, seed by seed}.

    The paper's claim is against the KD baselines too, not only the plain student: ``paired_to: [output_KD]`` in a
    plan. The spread a gain must exceed stays the baseline's own (``baseline_spread``, from the caller's paired
    table to the baseline), as for that table."""
    tables = OrderedDict()
    for reference in references or []:
        if reference == baseline_label or not any(res['label'] == reference for res in results):
            continue
        tables[reference] = paired_differences([res for res in results if res['label'] != baseline_label], reference)
        tables[reference]['baseline_spread'] = baseline_spread
    return tables


def format_paired(paired, metric='PSNR-Y', flagged=None, baseline_label=None, against=None):
    """Markdown: one row per method with its per-seed difference to the baseline, seeds ahead and the mean.

    A difference whose run or baseline run is on the bicubic plateau (``flagged``: {label: [seeds]}) is marked.
    ``against`` names another reference run than the baseline (``paired_to``): the differences are then to that
    run, and the spread line still gives the baseline's (``paired['baseline_spread']`` as the caller sets it).
    """
    reference = f'`{against}`' if against else 'the baseline'

    flagged = flagged or {}

    def mark(label, seed):
        hit = seed in flagged.get(label, []) or seed in flagged.get(baseline_label, [])
        return f' {budget_axis.FLAG}' if hit else ''

    seeds = sorted({seed for row in paired['rows'] for seed in row['diffs']})
    if not seeds:  # a baseline-only plan (e.g. a teacher probe): a table of headers would look like missing rows
        lines = [f'Paired {metric} difference to {reference}: no other method was run.']
        return '\n'.join(lines + _spread_lines(paired['baseline_spread'])) + '\n'
    lines = [f'Paired {metric} difference to {reference} (same seed), dB:', '',
             '| method | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | ahead | mean |',
             '|---|' + '--:|' * (len(seeds) + 2)]
    for row in paired['rows']:
        cells = [f"{row['diffs'][s]:+.3f}{mark(row['label'], s)}" if s in row['diffs'] else '—' for s in seeds]
        mean = f"{row['mean']:+.3f}" if row['mean'] is not None else '—'
        lines.append(f"| {row['label']} | " + ' | '.join(cells) + f" | {row['ahead']}/{len(row['diffs'])} | {mean} |")
    return '\n'.join(lines + _spread_lines(paired['baseline_spread'])) + '\n'


def _spread_lines(spread):
    if spread is None:
        return []
    return ['', f'Seed-to-seed spread of the baseline (std): {spread:.3f} dB. A mean gain below it is not a gain.']


def _fmt(pair, digits, signed=False):
    if pair is None or pair[0] is None:
        return '—'
    mean, std = pair
    text = f'{mean:+.{digits}f}' if signed else f'{mean:.{digits}f}'
    return text + (f' ± {std:.{digits}f}' if std else '')


def format_table(rows, dataset='', iters=None, flagged=None, baseline_label=None):
    """Markdown table of ``summarize`` rows; ``flagged`` ({label: [seeds]} on the bicubic plateau) marks gains."""
    flagged = flagged or {}
    lines = []
    if dataset:
        lines.append(f'Test set: {dataset}' + (f'; {iters} iterations per run' if iters else '') + '\n')
    header = ('method', 'role', 'seeds', 'PSNR-Y (dB)', 'SSIM-Y', 'ΔPSNR vs baseline', 'ΔSSIM vs baseline',
              'gap closed (PSNR)', 'gap closed (SSIM)')
    cells = []
    for row in rows:
        role = {'baseline': '**baseline**', 'teacher': '*teacher (reference)*'}.get(row['role'], '')
        seeds = ', '.join(str(s) for s in row['seeds']) or '—'
        gaps = [f'{row[f"gap_{m}"] * 100:.1f}%' if row[f'gap_{m}'] is not None else '—' for m in ('psnr', 'ssim')]
        gain = _fmt(row['gain_psnr'], 3, True) + budget_axis.gain_flag(row['label'], row['seeds'], flagged,
                                                                       baseline_label)
        cells.append((row['label'], role, seeds, _fmt(row['psnr'], 3), _fmt(row['ssim'], 4), gain,
                      _fmt(row['gain_ssim'], 4, True), gaps[0], gaps[1]))
    lines += markdown_table(header, cells)
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
    try:
        save_figure_atomic(fig, path, dpi=120)
    finally:
        plt.close(fig)
