"""Paper-layout result tables: one markdown table per test set, our measured rows beside published ones.

VSR papers (EDVR, BasicVSR, STD) print, per test set, one row per method with its parameters, runtime and
PSNR/SSIM. Published numbers are copied from papers or model zoos into a small YAML file (see
:func:`load_reference_rows`) so they are stated once, with their source, and never mistaken for our runs:
they are marked with a dagger and listed under the table. Numbers measured on another channel than the
table's (REDS4 is usually reported on RGB) carry that channel in their cell.
"""
import math
from collections import OrderedDict, namedtuple
from os import path as osp

from stdsr.config.yaml_reader import read_yaml_file
from stdsr.errors import PaperTableError

Row = namedtuple('Row', 'method params runtime_ms results source', defaults=(None, None, None, None))
Row.__doc__ = ('One method: ``results`` maps a test set to ``{psnr, ssim[, channel]}``; ``source`` is None for rows '
               'measured here, else where the published numbers come from.')

ROW_KEYS = {'method', 'params', 'runtime_ms', 'results', 'source'}
RESULT_KEYS = {'psnr', 'ssim', 'channel', 'runtime_ms'}
CHANNELS = ('Y', 'RGB')


def _number(value, where):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PaperTableError(f'{where} must be a finite number or ~, got {value!r}')
    return float(value)


def _params(value, where):
    """Parameter counts as integers or as papers print them ('20.6M', '970K')."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, str) and value[-1:].upper() in ('K', 'M'):
        try:
            return int(round(float(value[:-1]) * (1e3 if value[-1].upper() == 'K' else 1e6)))
        except ValueError:
            pass
    raise PaperTableError(f"{where} must be a count or a string such as '20.6M', got {value!r}")


def check_row(entry, where):
    """A Row from a mapping, every key and value checked (a typo must not drop a published number silently)."""
    if not isinstance(entry, dict):
        raise PaperTableError(f'{where} must be a mapping, got {entry!r}')
    unknown = sorted(set(entry) - ROW_KEYS)
    if unknown or 'method' not in entry:
        raise PaperTableError(f"{where}: unknown keys {unknown}" if unknown else f"{where}: 'method' is required")
    results = OrderedDict()
    for set_name, values in (entry.get('results') or {}).items():
        at = f"{where}.results.{set_name}"
        if not isinstance(values, dict) or set(values) - RESULT_KEYS:
            raise PaperTableError(f'{at} must be a mapping with keys from {sorted(RESULT_KEYS)}, got {values!r}')
        channel = values.get('channel', 'Y')
        if channel not in CHANNELS:
            raise PaperTableError(f"{at}.channel must be one of {CHANNELS}, got {channel!r}")
        results[str(set_name)] = {'psnr': _number(values.get('psnr'), f'{at}.psnr'),
                                  'ssim': _number(values.get('ssim'), f'{at}.ssim'), 'channel': channel,
                                  'runtime_ms': _number(values.get('runtime_ms'), f'{at}.runtime_ms')}
    return Row(str(entry['method']), _params(entry.get('params'), f'{where}.params'),
               _number(entry.get('runtime_ms'), f'{where}.runtime_ms'), results, entry.get('source'))


def load_reference_rows(path):
    """Published rows from ``path``: ``rows: [{method, params, runtime_ms, source, results: {SET: {psnr, ssim,
    channel}}}]``; ``source`` is required (a published number without its origin cannot be checked)."""
    if not osp.isfile(path):
        raise PaperTableError(f'reference file not found: {path}')
    data = read_yaml_file(path, PaperTableError, 'reference file')
    if not isinstance(data, dict) or not isinstance(data.get('rows'), list) or set(data) - {'rows'}:
        raise PaperTableError(f"{path}: expected a mapping with one key 'rows' holding a list")
    rows = []
    for i, entry in enumerate(data['rows']):
        row = check_row(entry, f'{path}: rows[{i}]')
        if not row.source:
            raise PaperTableError(f"{path}: rows[{i}] ({row.method}): 'source' is required for a published row")
        rows.append(row)
    return rows


def rows_from_report(report, channel='Y'):
    """Rows measured by the benchmark (its ``results.json`` dict: ``models``, ``results[label][set]``).

    The benchmark times every set separately, so each set's runtime is kept with that set's numbers.
    """
    rows = []
    for model in report['models']:
        per_set = report['results'].get(model['label'], {})
        results = OrderedDict((name, {'psnr': res['average'].get('psnr'), 'ssim': res['average'].get('ssim'),
                                      'channel': channel, 'runtime_ms': res.get('runtime_ms_per_frame')})
                              for name, res in per_set.items())
        rows.append(Row(model['label'], model.get('params'), None, results, None))
    return rows


def format_params(count):
    if count is None:
        return '-'
    return f'{count / 1e6:.2f}M' if count >= 1e6 else (f'{count / 1e3:.1f}K' if count >= 1e3 else str(count))


def _cell(value, digits, best):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    text = f'{value:.{digits}f}'
    return f'**{text}**' if best is not None and round(value, digits) == round(best, digits) else text


def render_table(set_name, rows, channel='Y', note=None, baselines=None):
    """Markdown for one test set: published rows first (dagger), then ours; best PSNR and SSIM in bold.

    ``baselines`` maps a method to the method it improves on (e.g. ``{'VESPCN+STD': 'VESPCN'}``): those
    rows get the PSNR gain over that baseline, the number the STD paper reports per student.
    """
    rows = [r for r in rows if set_name in r.results]
    if not rows:
        return ''
    by_method = {r.method: r.results[set_name] for r in rows}
    same_channel = [v for v in by_method.values() if v['channel'] == channel]
    best = {m: max((v[m] for v in same_channel if v[m] is not None), default=None) for m in ('psnr', 'ssim')}
    gains = baselines and any(m in by_method and b in by_method for m, b in baselines.items())
    header = ['Method', 'Params', 'Runtime (ms/frame)', f'PSNR (dB, {channel})', f'SSIM ({channel})']
    header += ['ΔPSNR (dB)'] if gains else []
    lines = [f'### {set_name}', '']
    if note:
        lines += [note, '']
    lines += ['| ' + ' | '.join(header) + ' |', '|---|--:|--:|--:|--:|' + ('--:|' if gains else '')]
    ordered = [r for r in rows if r.source] + [r for r in rows if not r.source]
    for row in ordered:
        res = row.results[set_name]
        off = res['channel'] != channel
        psnr = _cell(res['psnr'], 2, None if off else best['psnr']) + (f' ({res["channel"]})' if off else '')
        ssim = _cell(res['ssim'], 4, None if off else best['ssim']) + (f' ({res["channel"]})' if off else '')
        runtime = res.get('runtime_ms') if res.get('runtime_ms') is not None else row.runtime_ms
        cells = [row.method + (' †' if row.source else ''), format_params(row.params), _cell(runtime, 1, None), psnr,
                 ssim]
        if gains:
            base = by_method.get((baselines or {}).get(row.method))
            delta = (res['psnr'] - base['psnr'] if base and res['psnr'] is not None and base['psnr'] is not None
                     and base['channel'] == res['channel'] else None)
            cells.append('-' if delta is None else f'{delta:+.2f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    sources = OrderedDict((r.source, None) for r in ordered if r.source)
    if sources:
        lines += ['', '† published, not measured here: ' + '; '.join(sources) + '.']
    return '\n'.join(lines) + '\n'


def render_paper_tables(rows, references=(), sets=None, channel='Y', notes=None, baselines=None, title=None):
    """One :func:`render_table` per test set, in ``sets`` order (default: order of first appearance, ours first).

    ``rows``: measured :class:`Row` s (e.g. :func:`rows_from_report`); ``references``: published rows
    (:func:`load_reference_rows`), only shown for sets that are tabulated; ``channel``: ``'Y'`` or ``'RGB'``, or
    a mapping set -> channel; ``notes``: set -> one line printed above its table (degradation, crop, frames).
    """
    rows = [r if isinstance(r, Row) else check_row(r, 'row') for r in rows]
    if sets is None:
        sets = list(OrderedDict((name, None) for r in rows for name in r.results))
    parts = [f'## {title}\n'] if title else []
    for set_name in sets:
        set_channel = channel.get(set_name, 'Y') if isinstance(channel, dict) else channel
        table = render_table(set_name, list(references) + list(rows), set_channel, (notes or {}).get(set_name),
                             baselines)
        if table:
            parts.append(table)
    return '\n'.join(parts)
