"""Benchmark trained VSR models: PSNR/SSIM (Y) per clip and averaged, tOF, runtime per frame and parameters.

Evaluates every model (plus a ``bicubic`` baseline) on every data set and writes ``results.md``, ``results.csv``,
``results.json`` and ``psnr_vs_runtime.png`` (one panel per data set, log-x runtime, one labelled point per model).
``scripts/benchmark.py`` is the command line over :func:`run`; docs/benchmark.md shows examples.

Clips are averaged as the VSR literature does: a clip's value is the mean over its frames (tOF: over its frame
pairs), a data set's value the mean over its clips. The runtime of a model on a data set is the median, over its
clips, of (forward time of the whole clip / frames), after ``warmup`` untimed runs, with CUDA synchronised.
The output folder is checked before anything is evaluated, and the reports are written to temporary names and
renamed together at the end, so a failure never costs an evaluation nor leaves half a report.
"""
import csv
import io
import json
import math
import os
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass
from os import path as osp

import numpy as np
import torch
import yaml

from stdsr.data.clip_io import DataError, FrameReader, list_clip_tree
from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
from stdsr.data.lr_degradation import check_mode, check_scale, downsample, mod_crop
from stdsr.evaluation.paper_table import PaperTableError, load_reference_rows, render_paper_tables, rows_from_report
from stdsr.utils.cli import UserInputError
from stdsr.utils.model_loading import bicubic_model, models_from_args, resolve_device, synchronize
from stdsr.utils.preflight import check_writable_dir
from stdsr.utils.vsr_metrics import METRIC_NAMES, average_over_clips, clip_metrics, tensor_to_frames

OUTPUT_FILES = ('results.md', 'results.csv', 'results.json', 'psnr_vs_runtime.png', 'paper_tables.md')
DATASET_KEYS = {'name', 'gt_root', 'lq_root', 'degradation', 'meta_info_file', 'center_frame_only'}


class BenchmarkError(UserInputError):
    """Bad benchmark input (data set, scale, output folder); the message names the data set, model or file."""


# ----------------------------------------------------------------------------------------------------------------------
# data sets
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class DatasetSpec:
    name: str
    gt_root: str
    lq_root: str = None  # None: LR made from GT with ``degradation``
    degradation: str = None
    meta_info_file: str = None
    center_frame_only: bool = False  # Vimeo-90K-T convention: score only frame N//2 (the model still sees all N)

    @property
    def backend(self):
        return 'lmdb' if self.gt_root.rstrip('/').endswith('.lmdb') else 'disk'

    def describe(self):
        text = f'{self.lq_root} -> {self.gt_root}' if self.lq_root else f'{self.degradation}({self.gt_root})'
        return text + (', centre frames only' if self.center_frame_only else '')


def parse_dataset_arg(text):
    """``NAME=GT_ROOT[,LQ_ROOT]``."""
    if '=' not in text:
        raise BenchmarkError(f"--dataset '{text}': expected NAME=GT_ROOT[,LQ_ROOT]")
    name, roots = text.split('=', 1)
    parts = [p for p in roots.split(',') if p]
    if not name or len(parts) not in (1, 2):
        raise BenchmarkError(f"--dataset '{text}': expected NAME=GT_ROOT[,LQ_ROOT]")
    return DatasetSpec(name, parts[0], parts[1] if len(parts) == 2 else None)


def read_datasets_yaml(path):
    """A YAML list of ``{name, gt_root, lq_root?, degradation?, meta_info_file?}`` entries."""
    if not osp.isfile(path):
        raise BenchmarkError(f'--datasets file not found: {path}')
    with open(path) as f:
        entries = yaml.safe_load(f)
    if not isinstance(entries, list) or not entries:
        raise BenchmarkError(f'{path}: expected a non-empty YAML list of data sets')
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'name' not in entry or 'gt_root' not in entry:
            raise BenchmarkError(f'{path}: entry {i} needs at least name and gt_root, got {entry!r}')
        unknown = sorted(set(entry) - DATASET_KEYS)
        if unknown:
            raise BenchmarkError(f"{path}: entry '{entry['name']}' has unknown key(s) {unknown}; "
                                 f'valid: {sorted(DATASET_KEYS)}')
        entry = {k: (v if k == 'center_frame_only' else str(v) if v is not None else None) for k, v in entry.items()}
        if not isinstance(entry.get('center_frame_only', False), bool):
            raise BenchmarkError(f"{path}: entry '{entry['name']}': center_frame_only must be true or false")
        specs.append(DatasetSpec(**entry))
    return specs


def collect_datasets(args):
    specs = [parse_dataset_arg(d) for d in args.dataset]
    for path in args.datasets:
        specs += read_datasets_yaml(path)
    if args.gt_root:
        specs.append(DatasetSpec(args.name or osp.basename(osp.normpath(args.gt_root)), args.gt_root, args.lq_root))
    elif args.lq_root:
        raise BenchmarkError('--lq-root needs --gt-root')
    if args.demo:
        specs.append(DatasetSpec('demo', osp.join(args.demo, 'test', 'GT'), osp.join(args.demo, 'test', 'BIx4')))
        if osp.isdir(osp.join(args.demo, 'test_real', 'GT')):  # the real-motion test video (make_demo_clips.py)
            specs.append(DatasetSpec('demo_real', osp.join(args.demo, 'test_real', 'GT'),
                                     osp.join(args.demo, 'test_real', 'BIx4')))
    if not specs:
        raise BenchmarkError('no data set given: use --dataset NAME=GT_ROOT[,LQ_ROOT], --datasets FILE.yml or --demo')
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BenchmarkError(f'data set names must be unique, got {names}')
    for spec in specs:
        spec.center_frame_only = spec.center_frame_only or args.center_frame_only
        if spec.lq_root is None:
            spec.degradation = spec.degradation or args.degradation
            if spec.degradation is None:
                raise BenchmarkError(f"data set '{spec.name}' has no LQ root; give one (NAME=GT,LQ) or --degradation "
                                     'BI|BD to make LR frames from GT')
            try:
                spec.degradation = check_mode(spec.degradation)
            except ValueError as err:
                raise BenchmarkError(f"data set '{spec.name}': {err}") from None
        for root in (spec.gt_root, spec.lq_root):
            if root is not None and not osp.exists(root):
                raise BenchmarkError(f"data set '{spec.name}': {root} does not exist")
        if spec.lq_root and spec.lq_root.rstrip('/').endswith('.lmdb') != (spec.backend == 'lmdb'):
            raise BenchmarkError(f"data set '{spec.name}': GT and LQ must both be folders or both .lmdb, got "
                                 f'{spec.gt_root} and {spec.lq_root}')
    return specs


class BenchmarkSet:
    """Clips of one data set as ``(clip, frame_names, lq (N,3,h,w) float, gt [uint8 BGR frames])``, one at a time.

    With an LQ root, a GenericVideoTestDataset pairs GT and LQ (folders or LMDBs; the scale is read from the first
    frame pair). Without, the GT tree is read alone and each frame is mod-cropped and degraded (BI/BD) on the fly.
    """

    def __init__(self, spec, scale=None, max_frames=None, max_clips=None):
        self.spec = spec
        backend = spec.backend
        opt = {'name': spec.name, 'type': 'GenericVideoTestDataset', 'io_backend': {'type': backend}}
        if spec.meta_info_file:
            opt['meta_info_file'] = spec.meta_info_file
        if max_frames:
            opt['max_frames'] = max_frames
        if spec.lq_root:
            self.scale = self._pair_scale(spec, backend)
            opt.update(dataroot_gt=spec.gt_root, dataroot_lq=spec.lq_root, scale=self.scale)
        else:
            if scale is None:
                raise BenchmarkError(f"data set '{spec.name}': --scale is needed to make LR frames")
            try:
                self.scale = check_scale(scale)
            except ValueError as err:
                raise BenchmarkError(f"data set '{spec.name}': cannot make LR frames: {err}") from None
            opt.update(dataroot_lq=spec.gt_root)  # GT read as the only tree; LR is made from it below
        self.dataset = GenericVideoTestDataset(opt)
        self.num_clips = min(len(self.dataset), max_clips or len(self.dataset))

    @staticmethod
    def _pair_scale(spec, backend):
        """GT/LR size ratio of the first frame pair; it must be one integer for both sides."""
        lq_clips = list_clip_tree(spec.lq_root, backend)
        clip, frames = next(iter(lq_clips.items()))
        reader = FrameReader({'type': backend})
        lq, gt = reader.read(spec.lq_root, clip, frames[0]), reader.read(spec.gt_root, clip, frames[0])
        (h, w), (hh, ww) = lq.shape[:2], gt.shape[:2]
        if hh % h or ww % w or hh // h != ww // w:
            raise BenchmarkError(f"data set '{spec.name}': GT {reader.locate(spec.gt_root, clip, frames[0])} is "
                                 f"{hh}x{ww} but LQ {reader.locate(spec.lq_root, clip, frames[0])} is {h}x{w}: "
                                 'not an integer scale (if the LR was made from mod-cropped GT, mod-crop the GT '
                                 'too, or give only GT_ROOT and --degradation to degrade it on the fly)')
        return hh // h

    def __len__(self):
        return self.num_clips

    def __iter__(self):
        for idx in range(self.num_clips):
            item = self.dataset[idx]
            if self.spec.lq_root:
                yield item['clip'], item['frame_names'], item['lq'], tensor_to_frames(item['gt'])
                continue
            gts = [mod_crop(f, self.scale) for f in tensor_to_frames(item['lq'])]
            lrs = [downsample(f, self.scale, self.spec.degradation) for f in gts]
            lq = torch.from_numpy(np.stack([f[..., ::-1] for f in lrs]).transpose(0, 3, 1, 2).copy()).float() / 255.
            yield item['clip'], item['frame_names'], lq, gts


# ----------------------------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------------------------
def check_model_scale(model, data):
    if model.scale != data.scale:
        raise BenchmarkError(f"scale mismatch: model '{model.label}' upscales x{model.scale} but data set "
                             f"'{data.spec.name}' has GT = LR x{data.scale} ({data.spec.describe()})")


def timed_infer(model, lq, chunk):
    synchronize(model.device)
    start = time.perf_counter()
    sr = model.infer(lq[None], chunk=chunk)
    synchronize(model.device)
    return sr[0], time.perf_counter() - start


def evaluate(models, data, args, metrics, log=print):
    """``{label: {'per_clip': {clip: {...}}, 'average': {...}, 'runtime_ms_per_frame': float}}`` for one data set."""
    for model in models:
        check_model_scale(model, data)
    results = OrderedDict((m.label, {'per_clip': OrderedDict(), 'runtimes': []}) for m in models)
    for index, (clip, _, lq, gt_frames) in enumerate(data):
        for model in models:
            if index == 0:
                for _ in range(args.warmup):
                    model.infer(lq[None], chunk=args.chunk)
            sr, seconds = timed_infer(model, lq, args.chunk)
            sr_frames = tensor_to_frames(sr)
            if sr_frames[0].shape != gt_frames[0].shape:
                raise BenchmarkError(f"model '{model.label}' output {sr_frames[0].shape[:2]} for clip '{clip}' of data "
                                     f"set '{data.spec.name}' but its GT is {gt_frames[0].shape[:2]} (scale "
                                     f'x{data.scale}): the model does not upscale by the data set\'s scale')
            runtime = 1000. * seconds / len(sr_frames)
            if data.spec.center_frame_only:
                centre = len(sr_frames) // 2
                sr_frames, gt_scored = sr_frames[centre:centre + 1], gt_frames[centre:centre + 1]
            else:
                gt_scored = gt_frames
            values = clip_metrics(sr_frames, gt_scored, args.crop_border, metrics)
            values.pop('per_frame')
            values['runtime_ms_per_frame'] = runtime
            results[model.label]['per_clip'][clip] = values
            results[model.label]['runtimes'].append(values['runtime_ms_per_frame'])
            log(f'[{data.spec.name}] {clip:<24s} {model.label:<16s} ' +
                '  '.join(f'{m}: {values[m]:.4f}' for m in metrics) + f'  {runtime:.2f} ms/frame')
    for res in results.values():
        res['average'] = average_over_clips(res['per_clip'], metrics)
        res['runtime_ms_per_frame'] = statistics.median(res.pop('runtimes'))
    return results


# ----------------------------------------------------------------------------------------------------------------------
# reports
# ----------------------------------------------------------------------------------------------------------------------
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


def write_files_together(files, out_dir):
    """Write ``{name: str|bytes}`` under temporary names in ``out_dir``, then rename them all: a failure leaves the
    earlier reports (or none), never a mix of old and new or a truncated file."""
    os.makedirs(out_dir, exist_ok=True)
    temps = []
    try:
        for name, data in files.items():
            tmp = osp.join(out_dir, f'.{name}.partial')
            with open(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
                f.write(data)
            temps.append((tmp, osp.join(out_dir, name)))
    except BaseException:
        for tmp, _ in temps:
            os.remove(tmp)
        raise
    for tmp, final in temps:
        os.replace(tmp, final)


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


def check_out_dir(out_dir, overwrite):
    """Refuse to replace earlier results unless asked (checked before evaluating: they may be the only copy of a
    long evaluation, and a refusal after it would waste it)."""
    existing = [f for f in OUTPUT_FILES if osp.exists(osp.join(out_dir, f))]
    if existing and not overwrite:
        raise BenchmarkError(f'{out_dir} already holds {existing}; pass --overwrite or choose another --out')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise BenchmarkError(f'--out {out_dir} exists and is not a folder')
    try:
        check_writable_dir(out_dir, '--out')
    except UserInputError as err:
        raise BenchmarkError(str(err)) from None


def common_scale(models, args):
    if args.scale is not None:
        return args.scale
    scales = sorted({m.scale for m in models})
    if len(scales) > 1:
        raise BenchmarkError(f'models upscale by different factors {scales}; pass --scale for degraded data sets')
    return scales[0] if scales else None


def paper_table_inputs(args):
    """(published reference rows, {method: baseline method}) from ``--references`` and ``--baseline``."""
    baselines = {}
    for entry in getattr(args, 'baseline', None) or []:
        method, sep, baseline = entry.partition('=')
        if not (sep and method and baseline):
            raise BenchmarkError(f"--baseline '{entry}': expected METHOD=BASELINE_METHOD")
        baselines[method] = baseline
    path = getattr(args, 'references', None)
    try:
        return (load_reference_rows(path) if path else []), baselines
    except PaperTableError as err:
        raise BenchmarkError(str(err)) from None


def run(args, log=print):
    """Evaluate and write the reports; returns the report dict (also what results.json holds)."""
    check_out_dir(args.out, args.overwrite)
    references, baselines = paper_table_inputs(args)  # before evaluating: a bad file must not waste the run
    device = resolve_device(args.device)
    specs = collect_datasets(args)
    models = models_from_args(args, device)
    if not models and args.bicubic == 'none':
        raise BenchmarkError('nothing to evaluate: no --opt/--ckpt model and --bicubic none')
    scale = common_scale(models, args)
    report = {
        'settings': {'crop_border': args.crop_border, 'metrics': list(args.metrics), 'device': str(device),
                     'warmup': args.warmup, 'chunk': args.chunk, 'bicubic': args.bicubic,
                     'max_clips': args.max_clips, 'max_frames': args.max_frames,
                     'torch': torch.__version__, 'cuda': torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else None},
        'models': [], 'datasets': [], 'results': OrderedDict()
    }
    model_rows = OrderedDict()
    for spec in specs:
        if spec.lq_root is None and scale is None:
            raise BenchmarkError(f"data set '{spec.name}': pass --scale to make its LR frames (no model gives one)")
        data = BenchmarkSet(spec, scale, args.max_frames, args.max_clips)
        eval_models = list(models)
        if args.bicubic != 'none':
            eval_models.insert(0, bicubic_model(data.scale, args.bicubic, device))
        log(f"Data set '{spec.name}': {len(data)} clip(s), x{data.scale}, {spec.describe()}")
        results = evaluate(eval_models, data, args, args.metrics, log=(lambda *a: None) if args.quiet else log)
        report['datasets'].append({'name': spec.name, 'gt_root': spec.gt_root, 'lq_root': spec.lq_root,
                                   'degradation': spec.degradation, 'scale': data.scale, 'clips': len(data),
                                   'center_frame_only': spec.center_frame_only, 'source': spec.describe()})
        for model in eval_models:
            model_rows.setdefault(model.label, {'label': model.label, 'params': model.num_params,
                                                'source': model.source, 'mode': model.mode, 'window': model.window})
            report['results'].setdefault(model.label, OrderedDict())[spec.name] = results[model.label]
    report['models'] = list(model_rows.values())
    write_reports(report, args.out, references, baselines)
    log(markdown_report(report))
    log(f'Wrote {", ".join(OUTPUT_FILES)} to {args.out}')
    return report


