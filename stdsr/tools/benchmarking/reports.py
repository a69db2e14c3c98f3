"""The benchmark's reports: ``results.md``, ``results.csv``, ``results.json``, ``psnr_vs_runtime.png`` and
``paper_tables.md``, written under temporary names and renamed together, so a failure never leaves half a report.
"""
import csv
import io
import json
import math

from stdsr.errors import BenchmarkError
from stdsr.utils.atomic_files import write_files_together
from stdsr.tools.benchmarking.paper_table import PaperTableError, render_paper_tables, rows_from_report


def finite_or_none(value):
    """JSON has no inf/NaN."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def format_count(num):
    return f'{num / 1e6:.2f}M' if num >= 1e6 else (f'{num / 1e3:.1f}K' if num >= 1e3 else str(num))


def fmt(value, digits=4):
    return '-' if value is None or (isinstance(value, float) and math.isnan(value)) else f'{value:.{digits}f}'


def psnr_ssim_cell(values, metrics):
    parts = [fmt(values.get('psnr'), 2) if 'psnr' in metrics else None, fmt(values.get('ssim')) if 'ssim' in metrics
             else None]
    return '/'.join(p for p in parts if p is not None)


def markdown_report(report):
    metrics, crop = report['settings']['metrics'], report['settings']['crop_border']
    quality = '/'.join(m.upper() for m in metrics if m != 'tof')
    datasets = [d['name'] for d in report['datasets']]
    models = report['models']
    lines = [
        '# VSR benchmark', '',
        f"{quality} on Y (BT.601), crop_border={crop}; clips averaged over frames, data sets over clips. "
        f"tOF: mean flow end-point error between SR and GT frame pairs (lower is better). Runtime: median over "
        f"clips of ms per frame on {report['settings']['device']}.", ''
    ]
    header = ['model', 'params']
    for name in datasets:
        header += ([f'{name} {quality}'] if quality else []) + ([f'{name} tOF'] if 'tof' in metrics else [])
        header.append(f'{name} ms/frame')
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for model in models:
        row = [model['label'], format_count(model['params'])]
        for name in datasets:
            res = report['results'][model['label']][name]
            if quality:
                row.append(psnr_ssim_cell(res['average'], metrics))
            if 'tof' in metrics:
                row.append(fmt(res['average'].get('tof')))
            row.append(fmt(res['runtime_ms_per_frame'], 2))
        lines.append('| ' + ' | '.join(row) + ' |')
    for dataset in report['datasets']:
        name = dataset['name']
        lines += ['', f"## {name} (x{dataset['scale']}, {dataset['source']})", '']
        cols = ['clip', 'frames'] + [m['label'] for m in models]
        lines += ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
        first = report['results'][models[0]['label']][name]['per_clip']
        for clip, values in first.items():
            cells = []
            for model in models:
                v = report['results'][model['label']][name]['per_clip'][clip]
                cells.append(psnr_ssim_cell(v, metrics) + (f" ({fmt(v.get('tof'))})" if 'tof' in metrics else ''))
            lines.append(f"| {clip} | {values['num_frames']} | " + ' | '.join(cells) + ' |')
        cells = []
        for model in models:
            avg = report['results'][model['label']][name]['average']
            cells.append('**' + psnr_ssim_cell(avg, metrics) + (f" ({fmt(avg.get('tof'))})" if 'tof' in metrics else '')
                         + '**')
        lines.append('| **average** | | ' + ' | '.join(cells) + ' |')
        if 'tof' in metrics:
            lines += ['', 'Cells: ' + (f'{quality} ' if quality else '') + '(tOF).']
    return '\n'.join(lines) + '\n'


CSV_FIELDS = ['model', 'dataset', 'clip', 'frames', 'psnr', 'ssim', 'tof', 'runtime_ms_per_frame', 'params']


def csv_report(report):
    """Long format: one row per (model, data set, clip), then one 'average' row per (model, data set)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator='\n')
    writer.writeheader()
    for model in report['models']:
        for dataset in report['datasets']:
            res = report['results'][model['label']][dataset['name']]
            rows = [(clip, v, v['num_frames'], v['runtime_ms_per_frame']) for clip, v in res['per_clip'].items()]
            rows.append(('average', res['average'], sum(v['num_frames'] for v in res['per_clip'].values()),
                         res['runtime_ms_per_frame']))
            for clip, values, frames, runtime in rows:
                row = {'model': model['label'], 'dataset': dataset['name'], 'clip': clip, 'frames': frames,
                       'runtime_ms_per_frame': f'{runtime:.4f}', 'params': model['params']}
                for m in ('psnr', 'ssim', 'tof'):
                    value = values.get(m)
                    row[m] = '' if value is None or math.isnan(value) else f'{value:.6f}'  # NaN: undefined
                writer.writerow(row)
    return buf.getvalue()


def json_safe(obj):
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float):
        return finite_or_none(obj)
    return obj


def plot_psnr_runtime(report, path):
    """PSNR against runtime per frame (log x), one labelled point per model, one panel per data set (as Fig. 1)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    datasets = report['datasets']
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), dpi=100, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        runtimes = []
        for i, model in enumerate(report['models']):
            res = report['results'][model['label']][dataset['name']]
            psnr, runtime = res['average'].get('psnr'), max(res['runtime_ms_per_frame'], 1e-3)
            if psnr is None or not math.isfinite(psnr):
                continue
            runtimes.append(runtime)
            label = model['label'] + (f" ({format_count(model['params'])})" if model['params'] else '')
            ax.scatter([runtime], [psnr], s=60, color=f'C{i % 10}', zorder=3)
            ax.annotate(label, (runtime, psnr), textcoords='offset points', xytext=(6, 4), fontsize=9)
        ax.set_xscale('log')
        if runtimes:  # room on the right for the labels, in log space
            ax.set_xlim(min(runtimes) / 2, max(runtimes) * 8)
        ax.set_xlabel('runtime per frame (ms, log scale)')
        ax.set_ylabel('PSNR-Y (dB)')
        ax.set_title(f"{dataset['name']} (x{dataset['scale']}, {report['settings']['device']})")
        ax.grid(True, which='both', alpha=0.3)
        ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(report, out_dir, references=(), baselines=None):
    """Every report file at once; ``paper_tables.md`` has one table per test set in the papers' layout, with
    the published ``references`` rows (marked) beside ours."""
    png = io.BytesIO()
    plot_psnr_runtime(report, png)
    try:
        paper = render_paper_tables(rows_from_report(report), references, baselines=baselines)
    except PaperTableError as err:
        raise BenchmarkError(str(err)) from None
    write_files_together({'results.md': markdown_report(report), 'results.csv': csv_report(report),
                          'results.json': json.dumps(json_safe(report), indent=2) + '\n',
                          'psnr_vs_runtime.png': png.getvalue(), 'paper_tables.md': paper}, out_dir)
