"""Per-phase time and peak memory of training steps of an option file (ClipVSRModel or DistillVSRModel).

Examples::

    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_STD_demo.yml --threads 1 \\
        --force_yml path:pretrain_network_t=experiments/demo_VESPCN_teacher_x4/models/net_g_latest.pth
    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_baseline_demo.yml --json prof.json

The model, data set, sampler and loader are built exactly as ``python -m stdsr.train`` builds them (nothing is
written: no experiment folder, no checkpoint). The phases are timed inside the model's own training step (see
``stdsr/utils/train_profiler.py``); medians over ``--iters`` iterations after ``--warmup`` are reported.

For a DistillVSRModel, the *floor* is measured in the same run: a ClipVSRModel with the same student, the same
batches and the same efficiency options, plus one teacher forward. Its steps alternate with the distillation
steps (and swap order every iteration), so a change in machine load hits both alike and the ratio stays fair.
"""
import argparse
import json
import logging
import os
import platform
from os import path as osp

import torch

import stdsr  # noqa: F401  (patches torchvision before basicsr; registers everything)
from basicsr.data.prefetch_dataloader import CPUPrefetcher
from basicsr.models import build_model
from basicsr.utils import get_root_logger, set_random_seed

from stdsr.models.clip_inference import run_clip, temporal_mode
from stdsr.models.efficiency import TrainEfficiency, is_compiled, teacher_grad_mode
from stdsr.models.teacher import build_frozen_teacher
from stdsr.train import build_train_val_loaders
from stdsr.utils.dist import init_dist_from_options, resolve_device
from stdsr.utils.options import OptionError, parse_options
from stdsr.utils.train_profiler import (FLOOR_PHASES, PHASES, PeakMemory, PhaseTimer, check_targets, floor_options,
                                        format_profile, load_average, ratios, summarize, summarize_iterations,
                                        synchronize)


def build_parser():
    parser = argparse.ArgumentParser(description='Profile the training step of an stdsr option file.')
    parser.add_argument('-opt', required=True, help='training option file (ClipVSRModel or DistillVSRModel)')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations (medians are reported)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed iterations first')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'auto'], default='auto')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default); 1 is steadier on a shared machine')
    parser.add_argument('--no-floor', action='store_true', help='skip the floor measurement of a distillation run')
    parser.add_argument('--json', default=None, metavar='OUT', help='write the full profile as JSON')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    parser.add_argument('--verbose', action='store_true', help="show the models' INFO log (networks, compile)")
    parser.add_argument('--force_yml', nargs='+', default=None, help='override options, e.g. train:total_iter=10')
    return parser


# ---------------------------------------------------------------------------------------------------- set-up
def load_profile_options(args):
    """Parse and validate the option file as training does; place it on the requested device, single process."""
    argv = ['-opt', args.opt] + (['--force_yml', *args.force_yml] if args.force_yml else [])
    opt, _ = parse_options(argv, is_train=True)
    if args.device == 'cpu':
        opt['num_gpu'] = 0
    elif args.device == 'cuda':
        if not torch.cuda.is_available():
            raise OptionError('--device cuda: no CUDA device is available')
        opt['num_gpu'] = 1
    else:
        opt['num_gpu'] = min(opt['num_gpu'], 1)
    init_dist_from_options(opt, 'none')
    opt.setdefault('manual_seed', 0)
    opt['datasets'] = {'train': opt['datasets']['train']}  # validation sets are not needed
    return opt


def endless_batches(loader, sampler):
    """Batches as the training loop gets them (CPUPrefetcher over the loader), epoch after epoch."""
    prefetcher = CPUPrefetcher(loader)
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        prefetcher.reset()
        data = prefetcher.next()
        while data is not None:
            yield data
            data = prefetcher.next()
        epoch += 1


def seeded_model(opt):
    set_random_seed(opt['manual_seed'])
    return build_model(opt)


class Floor:
    """Plain student step plus one teacher forward, the least a distillation step can cost."""

    def __init__(self, opt, device):
        self.model = seeded_model(floor_options(opt))
        self.teacher = build_frozen_teacher(opt, device)
        self.efficiency = TrainEfficiency(opt, device)
        self.efficiency.prepare_network(self.teacher)
        self.mode_t, self.window_t = temporal_mode(opt, 'network_t')
        self.inference_mode = bool((opt.get('distill') or {}).get('teacher_inference_mode', False))
        self.timer = PhaseTimer(device)
        self.model.phase_timer = self.timer

    def step(self, current_iter, data, memory, keep):
        model, timer = self.model, self.timer
        model.feed_data(data)
        memory.reset()
        timer.begin()
        with timer.phase('student_step'):
            model.update_learning_rate(current_iter, warmup_iter=model.opt['train'].get('warmup_iter', -1))
            model.optimize_parameters(current_iter)
        with timer.phase('teacher_forward'):
            with self.efficiency.autocast(), teacher_grad_mode(self.inference_mode):
                run_clip(self.teacher, model.lq, self.mode_t, self.window_t)
        record, timer.current = timer.current, None
        record['floor'] = record['student_step'] + record['teacher_forward']
        if keep:
            timer.iterations.append(record)
        return memory.peak()


def profiled_step(model, timer, current_iter, data_wait, memory, keep):
    memory.reset()
    timer.begin()
    timer.current['data_wait'] = data_wait
    synchronize(model.device)
    with timer.phase('step_total'):
        model.update_learning_rate(current_iter, warmup_iter=model.opt['train'].get('warmup_iter', -1))
        model.optimize_parameters(current_iter)
    timer.end(timer.current.pop('step_total'), keep)
    return memory.peak()


# ------------------------------------------------------------------------------------------------ profiling
def profile(opt, iters, warmup, with_floor=True, option_file=''):
    """Profile ``iters`` training steps of ``opt`` after ``warmup``; returns the result dict (see module doc)."""
    if iters < 1 or warmup < 0:
        raise ValueError(f'--iters must be >= 1 and --warmup >= 0, got {iters} and {warmup}')
    device = resolve_device(opt)
    train_loader, train_sampler = build_train_val_loaders(opt)[:2]
    batches = endless_batches(train_loader, train_sampler)
    model = seeded_model(opt)
    timer = PhaseTimer(device)
    model.phase_timer = timer
    distill = hasattr(model, 'net_t')
    floor = Floor(opt, device) if distill and with_floor else None
    memory = PeakMemory(device)
    peaks = {'profiled': [], 'floor': []}
    load_before = load_average()
    for i in range(warmup + iters):
        keep = i >= warmup
        wait_timer = PhaseTimer(device)
        wait_timer.begin()
        with wait_timer.phase('data_wait'):
            data = next(batches)
            model.feed_data(data)
        data_wait = wait_timer.current['data_wait']
        runs = [('profiled', lambda: profiled_step(model, timer, i + 1, data_wait, memory, keep))]
        if floor is not None:
            runs.append(('floor', lambda: floor.step(i + 1, data, memory, keep)))
        for label, run in (runs if i % 2 == 0 else runs[::-1]):
            peak = run()
            if keep:
                peaks[label].append(peak)
    result = {
        'option_file': option_file,
        'name': opt['name'],
        'model_type': opt['model_type'],
        'device': str(device) if device.type == 'cpu' else f'{device} ({torch.cuda.get_device_name(device)})',
        'cpu': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(),
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'iters': iters,
        'warmup': warmup,
        'lq_shape': list(model.lq.shape),
        'gt_shape': list(model.gt.shape) if model.gt is not None else None,
        'num_worker_per_gpu': opt['datasets']['train'].get('num_worker_per_gpu'),
        'io_backend': opt['datasets']['train'].get('io_backend', {}).get('type'),
        'load_average_before': load_before,
        'load_average_after': load_average(),
        'efficiency': model.efficiency.describe(),
        'teacher_inference_mode': bool(getattr(model, 'teacher_inference_mode', False)),
        'compiled': is_compiled(model.get_bare_model(model.net_g)) if model.efficiency.compile else False,
        'compile_seconds': model.efficiency.compile_seconds,
        'phases': summarize_iterations(timer.iterations, PHASES + ('step', )),
        'per_iteration': timer.iterations,
        'floor': None,
    }
    if floor is not None:
        result['floor'] = summarize_iterations(floor.timer.iterations, FLOOR_PHASES + ('floor', ))
        result['floor']['per_iteration'] = floor.timer.iterations
    result['memory'] = {
        'method': memory.method,
        'runs': {
            label: {'peak_bytes': max(p for p, _ in values), 'increment_bytes': max(d for _, d in values)}
            for label, values in peaks.items() if values
        }
    }
    result['ratios'] = ratios(result['phases'], result['floor'])
    result['targets'] = check_targets(result['ratios'])
    return result


def write_json(result, path, overwrite=False):
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit('--threads must be >= 1')
        torch.set_num_threads(args.threads)
    if args.json and osp.exists(args.json) and not args.overwrite:
        raise SystemExit(f'error: {args.json} exists; pass --overwrite to replace it')
    get_root_logger(log_level=logging.INFO if args.verbose else logging.WARNING)
    try:
        opt = load_profile_options(args)
        result = profile(opt, args.iters, args.warmup, with_floor=not args.no_floor, option_file=args.opt)
    except (OptionError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from None
    print(format_profile(result))
    if args.json:
        write_json(result, args.json, args.overwrite)
        print(f'\nwrote {args.json}')
    return result


if __name__ == '__main__':
    main()
