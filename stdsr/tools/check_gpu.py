"""``scripts/check_gpu.py``: a few training steps of a tiny teacher/student pair on every CUDA path, as a table.

No CI machine has a GPU, so the first GPU owner runs this once and reports the table. Each check builds
the distillation model exactly as ``stdsr.train`` does (option file, ``init_dist_from_options``, device
options, determinism, seed + rank, ``build_model``), trains a few steps on random clips, validates one clip
(the eager path) and saves a checkpoint and training state. Checks run in their own process, so a CUDA
error in one cannot poison the others; the torchrun check starts 2 processes (nccl, one GPU each) and also
compares the EMA weights of the ranks.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import OrderedDict
from os import path as osp

import torch
import yaml
from stdsr.utils.timing import synchronize
from stdsr.utils.tables import markdown_table

CHECKS = OrderedDict([  # name -> what differs from the fp32 VESPCN pair (train options, pair, processes)
    ('fp32', {}),
    ('amp-fp16', {'train': {'efficiency': {'amp': 'fp16'}}}),
    ('amp-bf16', {'train': {'efficiency': {'amp': 'bf16'}}}),
    ('compile', {'train': {'efficiency': {'compile': True}}}),
    ('channels-last', {'train': {'efficiency': {'channels_last': True}}}),
    ('deterministic', {'train': {'deterministic': True}}),
    ('prefetch-cuda', {'prefetch_mode': 'cuda'}),  # batches copied on a side stream from pinned memory
    ('edvr', {'pair': 'edvr'}),  # deform_conv2d (EDVR, the paper's networks) instead of flow warping
    ('torchrun-2', {'nproc': 2}),  # 2 processes, one GPU each (nccl); gloo on the CPU stand-in
])
CUDA_ONLY = {'amp-fp16', 'prefetch-cuda'}
NUM_FRAME, LQ_SIZE, SCALE, BATCH = 3, 16, 4, 2

PAIRS = {
    'vespcn': ({'type': 'VESPCN', 'num_frame': NUM_FRAME, 'num_feat': 8, 'num_block': 1, 'num_feat_hr': 8,
                'num_feat_flow': 8, 'residual': True},
               {'type': 'VESPCN', 'num_frame': NUM_FRAME, 'num_feat': 12, 'num_block': 1, 'num_feat_hr': 12,
                'num_feat_flow': 8, 'residual': True}),
    'edvr': ({'type': 'EDVR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_frame': NUM_FRAME,
              'deformable_groups': 1, 'num_extract_block': 1, 'num_reconstruct_block': 1, 'with_tsa': False},
             {'type': 'EDVR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_frame': NUM_FRAME,
              'deformable_groups': 2, 'num_extract_block': 1, 'num_reconstruct_block': 1, 'with_tsa': True}),
}


def tiny_pair_options(name, device, work):
    """The option dict of check ``name``: STD (space + time distillation) of a tiny student from a tiny teacher."""
    spec = CHECKS[name]
    student, teacher = PAIRS[spec.get('pair', 'vespcn')]
    train = {
        'ema_decay': 0.9, 'grad_clip': 1.0, 'total_iter': 10,
        'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [10], 'restart_weights': [1], 'eta_min': 1e-6},
    }
    for key, value in (spec.get('train') or {}).items():
        train[key] = value
    return {
        'name': f'check_{name}', 'model_type': 'DistillVSRModel', 'scale': SCALE,
        'num_gpu': 1 if device == 'cuda' else 0, 'manual_seed': 0,  # under torchrun: one GPU per process
        'datasets': {'train': {  # never read: the checks feed random clips; the model reads num_frame
            'name': 'random', 'type': 'PairedClipDataset', 'dataroot_gt': 'unused', 'dataroot_lq': 'unused',
            'meta_info_file': 'unused', 'io_backend': {'type': 'disk'}, 'num_frame': NUM_FRAME, 'gt_size': 64,
            'batch_size_per_gpu': BATCH, 'num_worker_per_gpu': 0, 'prefetch_mode': spec.get('prefetch_mode')}},
        'network_g': dict(student), 'network_t': dict(teacher),
        'path': {'pretrain_network_t': osp.join(work, f"teacher_{spec.get('pair', 'vespcn')}.pth"),
                 'experiments_root': osp.join(work, 'runs', name)},
        'distill': {'student_layer': 'conv_hr', 'teacher_layer': 'conv_hr', 'losses': {
            'sd': {'type': 'SpaceDistillLoss', 'loss_weight': 0.1},
            'td': {'type': 'TimeDistillLoss', 'hidden_channels': 4, 'pool': 2, 'loss_weight': 1.0}}},
        'train': train,
        'logger': {'print_freq': 1000, 'save_checkpoint_freq': 1000},
    }


def write_check_files(name, device, work):
    """Option file and (freshly initialised) teacher checkpoint of check ``name``; returns the option file."""
    from basicsr.archs import build_network
    opt = tiny_pair_options(name, device, work)
    teacher_path = opt['path']['pretrain_network_t']
    if not osp.isfile(teacher_path):
        torch.manual_seed(0)
        torch.save({'params': build_network(dict(opt['network_t'])).state_dict()}, teacher_path)
    opt_file = osp.join(work, f'{name}.yml')
    with open(opt_file, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return opt_file


def checksum(net):
    return float(sum(v.detach().double().abs().sum() for v in net.state_dict().values() if v.is_floating_point()))


def train_a_few_steps(opt_file, launcher='none', iters=3):
    """Build the model as ``stdsr.train`` does, train ``iters`` steps, validate a clip, save. Returns a summary."""
    import stdsr  # noqa: F401  (registers archs, losses, models)
    from basicsr.models import build_model
    from basicsr.utils import set_random_seed
    from stdsr.runtime.determinism import determinism_from_options
    from stdsr.runtime.device import make_prefetcher, prepare_device_options
    from stdsr.runtime.dist import all_gather_objects, destroy_dist, init_dist_from_options
    from stdsr.config.options import parse_options

    opt, args = parse_options(['-opt', opt_file, '--launcher', launcher], is_train=True)
    init_dist_from_options(opt, args.launcher)
    try:
        prepare_device_options(opt)
        determinism_from_options(opt, is_train=True)
        set_random_seed(opt['manual_seed'] + opt['rank'])
        model = build_model(opt)
        gen = torch.Generator().manual_seed(opt['rank'])
        prefetcher = make_prefetcher(random_clip_loader(opt, iters, gen), opt)
        prefetcher.reset()
        start = None
        for it in range(1, iters + 1):
            if it == 2:  # the first step includes compilation and autotuning
                synchronize(model.device)
                start = time.perf_counter()
            model.feed_data(prefetcher.next())
            model.optimize_parameters(it)
            bad = [k for k, v in model.log_dict.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f'iter {it}: non-finite {", ".join(bad)}')
        synchronize(model.device)
        step_ms = 1000 * (time.perf_counter() - start) / max(iters - 1, 1) if start else float('nan')
        sr = model.infer(torch.rand(1, NUM_FRAME, 3, LQ_SIZE + 4, LQ_SIZE, generator=gen).to(model.device))
        if tuple(sr.shape[-2:]) != ((LQ_SIZE + 4) * SCALE, LQ_SIZE * SCALE) or not torch.isfinite(sr).all():
            raise RuntimeError(f'validation output of shape {tuple(sr.shape)} is wrong or not finite')
        model.save(epoch=0, current_iter=iters)
        ema = all_gather_objects(checksum(model.net_g_ema))
        if len(set(ema)) != 1:
            raise RuntimeError(f'EMA weights differ between ranks: {ema}')
        loss = sum(v for k, v in model.log_dict.items() if k.startswith('l_'))
        detail = f'loss {loss:.4g}, {step_ms:.1f} ms/step'
        if model.device.type == 'cuda':
            detail += f', peak {torch.cuda.max_memory_allocated(model.device) / 2**20:.0f} MiB'
        if opt['world_size'] > 1:
            detail += f", {opt['world_size']} ranks ({opt['dist_backend']}), EMA equal"
        return {'rank': opt['rank'], 'detail': detail}
    finally:
        destroy_dist()


def random_clip_loader(opt, iters, gen):
    """A DataLoader of ``iters`` random batches, pinned as the training loader would be on this device."""
    samples = [{'lq': torch.rand(NUM_FRAME, 3, LQ_SIZE, LQ_SIZE, generator=gen),
                'gt': torch.rand(NUM_FRAME, 3, LQ_SIZE * SCALE, LQ_SIZE * SCALE, generator=gen)}
               for _ in range(BATCH * iters)]
    return torch.utils.data.DataLoader(samples, batch_size=BATCH,
                                       pin_memory=bool(opt['datasets']['train'].get('pin_memory', False)))


def run_check(name, device, work, iters=3, isolate=True, timeout=600):
    """One row of the table: ``{'check', 'status' (pass/fail/skip), 'seconds', 'detail'}``."""
    row = {'check': name, 'status': 'skip', 'seconds': 0.0, 'detail': ''}
    reason = skip_reason(name, device)
    if reason:
        row['detail'] = reason
        return row
    start = time.perf_counter()
    nproc = CHECKS[name].get('nproc')
    try:
        opt_file = write_check_files(name, device, work)
        if isolate or nproc:
            result = run_worker(opt_file, iters, nproc, timeout)
        else:
            result = train_a_few_steps(opt_file, iters=iters)
        row.update(status='pass', detail=result['detail'])
    except Exception as err:  # noqa: BLE001  (every failure is a row of the table, not the end of the run)
        row.update(status='fail', detail=first_line(err))
    row['seconds'] = time.perf_counter() - start
    return row


def skip_reason(name, device):
    if device != 'cuda' and name in CUDA_ONLY:
        return 'needs CUDA'
    if CHECKS[name].get('nproc', 1) > 1 and device == 'cuda' and torch.cuda.device_count() < CHECKS[name]['nproc']:
        return f"needs {CHECKS[name]['nproc']} GPUs, {torch.cuda.device_count()} visible"
    if name == 'amp-bf16' and device == 'cuda':
        from stdsr.runtime.device import bf16_native
        if not bf16_native(torch.device('cuda', 0)):
            return 'no native bf16 on this GPU (compute capability < 8.0): training refuses it, use fp16'
    return None


def run_worker(opt_file, iters, nproc, timeout):
    """This module's ``--worker`` in a fresh process (or ``nproc`` processes under torchrun)."""
    fd, out = tempfile.mkstemp(suffix='.json')
    os.close(fd)
    worker = ['-m', 'stdsr.tools.check_gpu', '--worker', opt_file, '--iters', str(iters), '--out', out]
    if nproc:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', *worker,
               '--launcher', 'pytorch']
    else:
        cmd = [sys.executable, *worker]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        with open(out) as f:
            result = json.load(f) if os.path.getsize(out) else None
    finally:
        os.remove(out)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(last_error_line(proc.stderr + proc.stdout) or f'exit code {proc.returncode}')
    return result


def last_error_line(text):
    """The most telling line of a child's output: its last exception line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if 'Error' in line or 'error' in line or 'Exception' in line]
    return (errors or lines or [''])[-1][:300]


def first_line(err):
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0][:300] if text else ""}'


def format_table(rows, header_lines=()):
    cells = [(row['check'], row['status'].upper(), f"{row['seconds']:.1f} s", row['detail']) for row in rows]
    return '\n'.join(list(header_lines) + [''] + markdown_table(('check', 'result', 'time', 'detail'), cells, 'llrl'))


def environment_lines(device):
    lines = [f'torch {torch.__version__}, CUDA build {torch.version.cuda or "none"}']
    if device == 'cuda':
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            lines.append(f'cuda:{index} {torch.cuda.get_device_name(index)} (compute capability {major}.{minor})')
        lines.append(f'cuDNN {torch.backends.cudnn.version()}')
    else:
        lines.append('device: CPU stand-in (CUDA-only checks are skipped)')
    return lines


def build_parser():
    parser = argparse.ArgumentParser(description='Train a tiny teacher/student pair for a few steps on every CUDA '
                                     'path and print a pass/fail table (run once on a GPU machine).')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda',
                        help='cpu runs the same checks on the CPU (to test this script)')
    parser.add_argument('--only', nargs='+', choices=list(CHECKS), metavar='CHECK',
                        help=f'run these checks only (default: all of {", ".join(CHECKS)})')
    parser.add_argument('--iters', type=int, default=3, help='training steps per check')
    parser.add_argument('--work-dir', help='where option files, teachers and checkpoints go (default: a temp dir)')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--in-process', action='store_true', help='run single-process checks in this process')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    parser.add_argument('--launcher', default='none', help=argparse.SUPPRESS)
    return parser


def worker_main(args):
    try:
        result = train_a_few_steps(args.worker, args.launcher, args.iters)
    except Exception:
        traceback.print_exc()
        return 1
    if result['rank'] == 0:
        with open(args.out, 'w') as f:
            json.dump(result, f)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(f'No CUDA device is visible (torch {torch.__version__}, CUDA build {torch.version.cuda or "none"}): '
              'nothing to check. Run this on a machine with a GPU (or --device cpu to test the script).')
        return 0
    names = args.only or list(CHECKS)
    with tempfile.TemporaryDirectory(prefix='stdsr_check_gpu_') as tmp:
        work = args.work_dir or tmp
        os.makedirs(work, exist_ok=True)
        rows = []
        for name in names:
            rows.append(run_check(name, args.device, work, args.iters, isolate=not args.in_process))
            print(f"{name}: {rows[-1]['status']} {rows[-1]['detail']}", file=sys.stderr, flush=True)
    print(format_table(rows, environment_lines(args.device)), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return 1 if any(row['status'] == 'fail' for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
