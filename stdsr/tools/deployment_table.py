"""``scripts/deployment_table.py``: the deployment table of the students, measured in one run on this machine.

For each student (``--opt [LABEL=]FILE.yml`` or ``--ckpt [LABEL=]FILE.pth --arch-opt FILE.yml``) the fp32 ONNX
export and its INT8 copy are made with :mod:`stdsr.deploy` (export with parity check, static quantization
calibrated on LR training clips), then measured side by side: parameters, file sizes, PSNR (Y) on the demo test
clips for PyTorch, onnxruntime fp32 and INT8 (:func:`stdsr.tools.benchmarking.evaluate`), the INT8 drop there
and on real video (LR by the package's BI x4 downsampling, a few frames per clip), and ms per frame at the
deployment size (180x320 LR by default) at 1 thread and all threads for the three runtimes, with their speed-up
over PyTorch eager. Ratios are only meaningful within one run: every figure of the table comes from the same one.
``DIR/deployment_table.md`` and ``DIR/deployment_table.json`` appear together with the models, or not at all.
"""
import argparse
import json
import os
import platform
from argparse import Namespace
from os import path as osp

import torch

from stdsr.deploy import latency
from stdsr.errors import DeploymentTableError
from stdsr.deploy.int8 import CALIB_WINDOWS, QuantizationRefused, quantize_student
from stdsr.deploy.onnx_export import ExportError, export_student, json_db

TABLE_MD, TABLE_JSON = 'deployment_table.md', 'deployment_table.json'
BACKENDS = ('torch', 'onnx_fp32', 'onnx_int8')
BACKEND_NAMES = {'torch': 'PyTorch eager', 'onnx_fp32': 'onnxruntime fp32', 'onnx_int8': 'onnxruntime INT8'}


def parse_args(argv=None):
    from stdsr.inference.model_loading import add_model_arguments
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(': ', 1)[-1])
    add_model_arguments(parser)
    parser.add_argument('--output', required=True, metavar='DIR', help='folder of the table and the ONNX models')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    parser.add_argument('--lr-size', type=int, nargs=2, default=list(latency.DEPLOY_LR_SIZE), metavar=('H', 'W'),
                        help='LR size of the timed frames (default 180 320, x4 to 720x1280)')
    parser.add_argument('--repeats', type=int, default=3, help='timed forwards per runtime and thread count (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed forwards before the timed ones')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help=f'"all threads" (default: the {os.cpu_count()} CPUs of this machine)')
    parser.add_argument('--demo', default='datasets/demo', metavar='DIR',
                        help='demo data: test clips <DIR>/test/GT + BIx4, calibration clips <DIR>/train/BIx4')
    parser.add_argument('--calib-lq', metavar='DIR', help='LR training clips for INT8 (default <demo>/train/BIx4)')
    parser.add_argument('--calib-windows', type=int, default=CALIB_WINDOWS, help='INT8 calibration windows')
    parser.add_argument('--real', metavar='DIR',
                        help='real-video GT clips (LR made by BI x4; default <demo>/test_real/GT, the demo\'s camera '
                        'video); "none" to skip')
    parser.add_argument('--real-frames', type=int, default=3, help='frames per real-video clip')
    parser.add_argument('--test-frames', type=int, help='frames per demo test clip (default: all)')
    args = parser.parse_args(argv)
    checks = [(min(args.lr_size) < 8, '--lr-size must be at least 8 8'), (args.repeats < 1, '--repeats must be >= 1'),
              (args.warmup < 0, '--warmup must be >= 0'), (args.threads < 1, '--threads must be >= 1'),
              (args.calib_windows < 1, '--calib-windows must be >= 1'),
              (args.real_frames < 1, '--real-frames must be >= 1'),
              (args.test_frames is not None and args.test_frames < 1, '--test-frames must be >= 1')]
    for failed, message in checks:
        if failed:
            parser.error(message)
    args.calib_lq = args.calib_lq or osp.join(args.demo, 'train', 'BIx4')
    args.real = args.real or osp.join(args.demo, 'test_real', 'GT')  # made by make demo, like the calibration clips
    args.real = None if str(args.real).lower() == 'none' else args.real
    return args


def check_inputs(args):
    """Everything that can be checked before a model is loaded or a file is written."""
    roots = {'--demo test GT': osp.join(args.demo, 'test', 'GT'), '--demo test LR': osp.join(args.demo, 'test', 'BIx4'),
             '--calib-lq': args.calib_lq}
    if args.real:
        roots['--real'] = args.real
    for what, root in roots.items():
        if not osp.isdir(root):
            raise DeploymentTableError(f'{what}: folder {root} does not exist')
    if osp.lexists(args.output):
        if not osp.isdir(args.output):
            raise DeploymentTableError(f'--output {args.output} exists and is not a folder')
        if os.listdir(args.output) and not args.overwrite:
            raise DeploymentTableError(
                f'--output {args.output} exists and is not empty; pass --overwrite to replace it')
    parent = osp.dirname(osp.abspath(args.output))
    if osp.isdir(parent) and not os.access(parent, os.W_OK):
        raise DeploymentTableError(f'--output {args.output}: folder {parent} is not writable')


# ----------------------------------------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------------------------------------
def psnr_by_backend(runners, spec, scale, max_frames, log):
    """Mean PSNR (Y) over the clips of ``spec`` for each runner, by the benchmark's own evaluation."""
    from stdsr.tools.benchmarking import BenchmarkSet, evaluate
    data = BenchmarkSet(spec, scale=scale, max_frames=max_frames)
    results = evaluate(list(runners.values()), data, Namespace(warmup=0, chunk=8, crop_border=0), ('psnr', ), log)
    return {key: results[runner.label]['average']['psnr'] for key, runner in runners.items()}


def ms_by_backend(net, window, files, size, threads, repeats, warmup):
    """ms per frame of each runtime at ``threads`` intra-op threads; ``files`` maps backend -> ONNX path."""
    out = {'torch': latency.torch_ms_per_frame(net, window, size, threads, repeats, warmup)}
    for key, path in files.items():
        out[key] = latency.onnx_ms_per_frame(path, window, size, threads, repeats, warmup)
    return out


def speedups(ms):
    """PyTorch eager time over each runtime's time (>1: faster than PyTorch), from the measured ms."""
    return {key: ms['torch'] / value for key, value in ms.items() if value}


def measure_student(model, args, out_dir, log=print):
    """One row of the table (a dict): export, quantize, then PSNR and ms for every runtime that exists."""
    from stdsr.deploy.onnx_session import OnnxStudent
    from stdsr.tools.benchmarking import DatasetSpec
    label = model.label
    row = {'label': label, 'arch': model.net_opt.get('type'), 'window': model.window, 'scale': model.scale,
           'params': model.num_params, 'notes': []}
    files = {}
    stem = osp.join(out_dir, label.replace('/', '_'))
    try:
        export_student(model, f'{stem}.onnx', log=log)
        files['onnx_fp32'] = f'{stem}.onnx'
    except ExportError as err:
        row['notes'].append(f'no ONNX: {err}')
    if files:
        try:
            quantize_student(files['onnx_fp32'], f'{stem}_int8.onnx', args.calib_lq, args.calib_windows, log=log)
            files['onnx_int8'] = f'{stem}_int8.onnx'
        except QuantizationRefused as err:
            row['notes'].append(f'no INT8: {err}')
    row['size_kb'] = {key: osp.getsize(path) / 1024. for key, path in files.items()}
    runners = {'torch': model}
    runners.update({key: OnnxStudent(path, label=f'{label} ({key})') for key, path in files.items()})
    demo = DatasetSpec('demo', osp.join(args.demo, 'test', 'GT'), osp.join(args.demo, 'test', 'BIx4'))
    row['psnr_demo'] = psnr_by_backend(runners, demo, model.scale, args.test_frames, log)
    if args.real:
        real = DatasetSpec('realvideo', args.real, degradation='BI')
        row['psnr_real'] = psnr_by_backend(runners, real, model.scale, args.real_frames, log)
    for name in ('demo', 'real'):
        psnr = row.get(f'psnr_{name}') or {}
        row[f'int8_drop_{name}'] = psnr['onnx_fp32'] - psnr['onnx_int8'] if 'onnx_int8' in psnr else None
    size = tuple(args.lr_size)
    row['ms'], row['speedup'] = {}, {}
    for key, threads in (('1', 1), ('all', args.threads)):
        if key == 'all' and threads == 1:  # the same setting: one measurement serves both keys
            row['ms']['all'], row['speedup']['all'] = row['ms']['1'], row['speedup']['1']
            continue
        ms = ms_by_backend(model.net, model.window, files, size, threads, args.repeats, args.warmup)
        row['ms'][key], row['speedup'][key] = ms, speedups(ms)
        log(f"[{label}] ms/frame at {size[0]}x{size[1]}, {threads} thread(s): " +
            ', '.join(f'{BACKEND_NAMES[k]} {v:.1f}' for k, v in ms.items()))
    return row


# ----------------------------------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------------------------------
DROP_FMT = '{:.3f}'  # INT8 drops of trained students are a few thousandths of a dB: two decimals would read 0.00


def _num(value, fmt='{:.2f}'):
    return '-' if value is None else fmt.format(value)


def _ms_cell(row, threads, key):
    ms = row['ms'][threads].get(key)
    if ms is None:
        return '-'
    return f'{ms:.1f}' if key == 'torch' else f"{ms:.1f} ({row['speedup'][threads][key]:.2f}x)"


def markdown_table(report):
    s = report['settings']
    h, w = s['lr_size']
    lines = [f"# Deployment table ({s['date']})", '',
             f"One run on {s['machine']} ({s['cpus']} CPUs), 1-min load average {s['load_1min']:.2f} at the start; "
             f"torch {s['torch']}, onnxruntime {s['onnxruntime']}. PSNR: Y channel, no border crop, mean over clips "
             f"(demo test clips; realvideo: {s['real_frames']} frames per clip, LR by BI x{s['scale']}). ms per frame: "
             f"one {h}x{w} LR window -> {h * s['scale']}x{w * s['scale']}, median of {s['repeats']} after "
             f"{s['warmup']} warm-up; (Nx) = PyTorch eager ms / this runtime's ms (>1: faster).", '',
             '| student | params | fp32 KB | INT8 KB | PSNR demo PyTorch | fp32 ORT | INT8 ORT | INT8 drop demo | '
             'INT8 drop realvideo |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in report['rows']:
        p = r['psnr_demo']
        lines.append(f"| {r['label']} | {r['params']:,} | {_num(r['size_kb'].get('onnx_fp32'), '{:.1f}')} | "
                     f"{_num(r['size_kb'].get('onnx_int8'), '{:.1f}')} | {_num(p.get('torch'))} | "
                     f"{_num(p.get('onnx_fp32'))} | {_num(p.get('onnx_int8'))} | "
                     f"{_num(r['int8_drop_demo'], DROP_FMT)} | {_num(r['int8_drop_real'], DROP_FMT)} |")
    groups = {'1': '1 thread'}
    if s['threads'] > 1:
        groups['all'] = f"{s['threads']} threads"
    header = ' | '.join(f'{name}: PyTorch ms | fp32 ORT | INT8 ORT' for name in groups.values())
    lines += ['', f'| student | {header} |', '|---|' + '---:|' * (3 * len(groups))]
    for r in report['rows']:
        lines.append(f"| {r['label']} | " + ' | '.join(_ms_cell(r, t, k) for t in groups for k in BACKENDS) + ' |')
    notes = [f"- {r['label']}: {note}" for r in report['rows'] for note in r['notes']]
    if notes:
        lines += ['', 'Refused:', ''] + notes
    return '\n'.join(lines) + '\n'


def json_report(report):
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return json_db(obj) if isinstance(obj, float) else obj

    return json.dumps(clean(report), indent=2) + '\n'


def settings(args, scale):
    import datetime

    import onnxruntime
    return {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'machine': platform.processor() or platform.machine(), 'cpus': os.cpu_count(),
            'load_1min': os.getloadavg()[0], 'torch': torch.__version__, 'onnxruntime': onnxruntime.__version__,
            'lr_size': list(args.lr_size), 'scale': scale, 'repeats': args.repeats, 'warmup': args.warmup,
            'threads': args.threads, 'real': args.real, 'real_frames': args.real_frames, 'demo': args.demo,
            'test_frames': args.test_frames, 'calib_lq': args.calib_lq, 'calib_windows': args.calib_windows}


def main(argv=None, log=print):
    import stdsr  # noqa: F401  (registers the archs)
    from stdsr.utils.atomic_files import atomic_folder, write_text_atomic
    from stdsr.inference.model_loading import models_from_args
    args = parse_args(argv)
    check_inputs(args)
    models = models_from_args(args, torch.device('cpu'))
    scales = sorted({m.scale for m in models})
    if len(scales) != 1:
        raise DeploymentTableError(f'the students must share one scale, got x{scales}')
    report = {'settings': settings(args, scales[0]), 'rows': []}
    if osp.isdir(args.output) and not os.listdir(args.output):
        os.rmdir(args.output)  # an empty folder holds nothing to lose; atomic_folder publishes a fresh one
    with atomic_folder(args.output, replace=args.overwrite) as tmp:
        for model in models:
            report['rows'].append(measure_student(model, args, tmp, log))
        write_text_atomic(osp.join(tmp, TABLE_JSON), json_report(report))
        write_text_atomic(osp.join(tmp, TABLE_MD), markdown_table(report))
    log(markdown_table(report))
    log(f'Wrote {osp.join(args.output, TABLE_MD)} and {TABLE_JSON}')
    return 0
