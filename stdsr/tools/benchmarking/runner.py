"""Benchmark trained VSR models: evaluate every model (plus a ``bicubic`` baseline) on every data set and write
the reports. The output folder and reference rows are checked before anything is evaluated.
"""
import json
from collections import OrderedDict
from os import path as osp

import torch

from stdsr.errors import BenchmarkError
from stdsr.tools.benchmarking.paper_table import PaperTableError, load_reference_rows
from stdsr.utils.cli import UserInputError
from stdsr.inference.model_loading import bicubic_model, models_from_args, resolve_device
from stdsr.utils.output_paths import check_writable_dir
from stdsr.tools.benchmarking.datasets import collect_datasets, BenchmarkSet
from stdsr.tools.benchmarking.evaluate import evaluate
from stdsr.tools.benchmarking.reports import markdown_report, write_reports

OUTPUT_FILES = ('results.md', 'results.csv', 'results.json', 'psnr_vs_runtime.png', 'paper_tables.md')


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
