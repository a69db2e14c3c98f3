"""Per-phase time and peak memory of training steps of an option file (ClipVSRModel or DistillVSRModel).

Examples::

    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_STD_demo.yml --threads 1 \\
        --force_yml path:pretrain_network_t=experiments/demo_VESPCN_teacher_x4/models/net_g_latest.pth
    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_baseline_demo.yml --json prof.json
    python scripts/profile_train.py -opt STD.yml --compare 'train:efficiency={amp: bf16}'   # option's effect

The model, data set, sampler and loader are built exactly as ``python -m stdsr.train`` builds them (nothing is
written: no experiment folder, no checkpoint). The phases are timed inside the model's own training step (see
``stdsr/tools/profiling/training.py``); medians over ``--iters`` iterations after ``--warmup`` are reported.

For a DistillVSRModel, the *floor* is measured in the same run: a ClipVSRModel with the same student, the same
batches and the same efficiency options, plus one teacher forward. ``--compare`` adds a second model built with
extra ``--force_yml`` entries (model options only: the data set stays the profiled one's). All models take turns
on the same batch, in an order that rotates every iteration, so a change in machine load hits them alike and
their ratios stay fair even on a busy machine.
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

from stdsr.archs.clip_runner import run_clip, temporal_mode
from stdsr.runtime.train_efficiency import TrainEfficiency, is_compiled, teacher_grad_mode
from stdsr.distill.teacher import build_frozen_teacher
from stdsr.engine.training import build_train_val_loaders
from stdsr.runtime.dist import init_dist_from_options, process_device
from stdsr.config.options import OptionError, parse_options
from stdsr.utils.atomic_files import write_text_atomic
from stdsr.tools.profiling.training import (FLOOR_PHASES, PHASES, STUDENT_PHASES, PhaseTimer, StepMemory, check_targets,
                                        floor_options, format_profile, load_average, ratios, summarize_iterations)


def build_parser():
    parser = argparse.ArgumentParser(description='Profile the training step of an stdsr option file.')
    parser.add_argument('-opt', required=True, help='training option file (ClipVSRModel or DistillVSRModel)')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations (medians are reported)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed iterations first')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'auto'], default='auto')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default); 1 is steadier on a shared machine')
    parser.add_argument('--mem-iters', type=int, default=1,
                        help='extra untimed iterations that measure peak memory (0: none)')
    parser.add_argument('--no-floor', action='store_true', help='skip the floor measurement of a distillation run')
    parser.add_argument('--compare', nargs='+', default=None, metavar='KEY=VALUE',
                        help='also profile a variant with these extra --force_yml entries (model options only)')
    parser.add_argument('--json', default=None, metavar='OUT', help='write the full profile as JSON')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    parser.add_argument('--verbose', action='store_true', help="show the models' INFO log (networks, compile)")
    parser.add_argument('--force_yml', nargs='+', default=None, help='override options, e.g. train:total_iter=10')
    return parser


# ---------------------------------------------------------------------------------------------------- set-up
def load_profile_options(opt_file, force_yml, device):
    """Parse and validate the option file as training does; place it on the requested device, single process."""
    argv = ['-opt', opt_file] + (['--force_yml', *force_yml] if force_yml else [])
    opt, _ = parse_options(argv, is_train=True)
    if device == 'cpu':
        opt['num_gpu'] = 0
    elif device == 'cuda':
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
    """Same seed before every build, so the profiled model, its floor and a variant start from one student."""
    set_random_seed(opt['manual_seed'])
    return build_model(opt)


def run_step(model, current_iter):
    """What the training loop does per iteration once the batch is fed."""
    model.update_learning_rate(current_iter, warmup_iter=model.opt['train'].get('warmup_iter', -1))
    model.optimize_parameters(current_iter)


class ModelRunner:
    """A training model whose steps are timed phase by phase."""

    def __init__(self, model, device):
        self.model = model
        self.timer = PhaseTimer(device)
        self.memory = []
        terms = getattr(model, 'distill_terms', None) or {}
        self.loss_phases = [f'loss:{name}' for name in terms]
        self.timer.time_module_forwards({f'loss:{name}': term.loss for name, term in terms.items()})

    def run(self, current_iter, data):
        self.model.feed_data(data)
        run_step(self.model, current_iter)

    def timed_step(self, current_iter, data, data_wait, keep):
        self.model.feed_data(data)
        self.model.phase_timer = self.timer
        self.timer.begin()
        self.timer.current['data_wait'] = data_wait
        with self.timer.phase('step_total'):
            run_step(self.model, current_iter)
        self.timer.end(self.timer.current.pop('step_total'), keep)
        self.model.phase_timer = None

    def summary(self):
        return summarize_iterations(self.timer.iterations, PHASES + tuple(self.loss_phases) + ('step', ))


class FloorRunner(ModelRunner):
    """Plain student step plus one teacher forward: the least a distillation step can cost."""

    def __init__(self, opt, device):
        super().__init__(seeded_model(floor_options(opt)), device)
        self.teacher = build_frozen_teacher(opt, device)
        self.efficiency = TrainEfficiency(opt, device)
        self.efficiency.prepare_network(self.teacher)
        self.mode_t, self.window_t = temporal_mode(opt, 'network_t')
        self.inference_mode = bool((opt.get('distill') or {}).get('teacher_inference_mode', False))

    def run(self, current_iter, data):
        model = self.model
        model.feed_data(data)
        with self.timer.phase('student_step'):
            run_step(model, current_iter)
        with self.timer.phase('teacher_forward'):
            with self.efficiency.autocast(), teacher_grad_mode(self.inference_mode):
                run_clip(self.teacher, model.lq, self.mode_t, self.window_t)

    def timed_step(self, current_iter, data, data_wait, keep):
        self.model.phase_timer = self.timer
        self.timer.begin()
        self.run(current_iter, data)
        record, self.timer.current = self.timer.current, None
        record['floor'] = record['student_step'] + record['teacher_forward']
        if keep:
            self.timer.iterations.append(record)
        self.model.phase_timer = None

    def summary(self):
        return summarize_iterations(self.timer.iterations, FLOOR_PHASES + STUDENT_PHASES + ('floor', ))


# ------------------------------------------------------------------------------------------------ profiling
def profile(opt, iters, warmup, with_floor=True, option_file='', mem_iters=1, compare_opt=None, compare=None):
    """Profile ``iters`` training steps of ``opt`` after ``warmup``; returns the result dict (see module doc)."""
    if iters < 1 or warmup < 0 or mem_iters < 0:
        raise ValueError(f'need iters >= 1, warmup >= 0 and mem_iters >= 0, got {iters}, {warmup}, {mem_iters}')
    device = process_device(opt)
    train_loader, train_sampler = build_train_val_loaders(opt)[:2]
    batches = endless_batches(train_loader, train_sampler)
    runners = {'profiled': ModelRunner(seeded_model(opt), device)}
    model = runners['profiled'].model
    if with_floor and hasattr(model, 'net_t'):
        runners['floor'] = FloorRunner(opt, device)
    if compare_opt is not None:
        if compare_opt['datasets'] != opt['datasets']:
            raise OptionError(f'--compare {compare}: changes the data set options; the variant reads the profiled '
                              "model's batches, so compare data options in separate runs")
        runners['variant'] = ModelRunner(seeded_model(compare_opt), device)
    order = list(runners.values())
    load_before = load_average()
    current_iter = 0
    for i in range(warmup + iters):
        current_iter += 1
        wait = PhaseTimer(device)
        wait.begin()
        with wait.phase('data_wait'):
            data = next(batches)
            model.feed_data(data)
        shift = i % len(order)
        for runner in order[shift:] + order[:shift]:
            runner.timed_step(current_iter, data, wait.current['data_wait'], keep=i >= warmup)
    load_after = load_average()

    memory = StepMemory(device)
    for _ in range(mem_iters):
        current_iter += 1
        data = next(batches)
        for runner in order:
            runner.memory.append(memory.measure(lambda: runner.run(current_iter, data)))

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
        'io_backend': (opt['datasets']['train'].get('io_backend') or {}).get('type'),
        'load_average_before': load_before,
        'load_average_after': load_after,
        'efficiency': model.efficiency.describe(),
        'teacher_inference_mode': bool(getattr(model, 'teacher_inference_mode', False)),
        'compiled': is_compiled(model.get_bare_model(model.net_g)) if model.efficiency.compile else False,
        'compile_seconds': model.efficiency.compile_seconds,
        'phases': runners['profiled'].summary(),
        'per_iteration': runners['profiled'].timer.iterations,
        'warmup_step_s': runners['profiled'].timer.warmup,
        'floor': None,
        'compare': None,
    }
    if 'floor' in runners:
        result['floor'] = runners['floor'].summary()
        result['floor']['per_iteration'] = runners['floor'].timer.iterations
    if 'variant' in runners:
        variant = runners['variant']
        v_model = variant.model
        result['compare'] = {
            'force_yml': list(compare),
            'efficiency': v_model.efficiency.describe(),
            'teacher_inference_mode': bool(getattr(v_model, 'teacher_inference_mode', False)),
            'compiled': is_compiled(v_model.get_bare_model(v_model.net_g)) if v_model.efficiency.compile else False,
            'compile_seconds': v_model.efficiency.compile_seconds,
            'phases': variant.summary(),
            'per_iteration': variant.timer.iterations,
            'warmup_step_s': variant.timer.warmup,
        }
        base = result['phases']['step']['median_s']
        result['compare']['step_ratio'] = variant.summary()['step']['median_s'] / base if base else None
    result['memory'] = None
    if mem_iters:
        result['memory'] = {'method': runners['profiled'].memory[0]['method'], 'iters': mem_iters, 'runs': {}}
        for label, runner in runners.items():
            result['memory']['runs'][label] = {
                key: (None if any(r[key] is None for r in runner.memory) else max(r[key] for r in runner.memory))
                for key in ('tensor_peak_bytes', 'rss_peak_bytes', 'rss_rise_bytes')
            }
    result['ratios'] = ratios(result['phases'], result['floor'])
    result['targets'] = check_targets(result['ratios'])
    return result


def write_json(result, path, overwrite=False):
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
    write_text_atomic(path, json.dumps(result, indent=2))


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit('error: --threads must be >= 1')
        torch.set_num_threads(args.threads)
    if args.json and osp.exists(args.json) and not args.overwrite:
        raise SystemExit(f'error: {args.json} exists; pass --overwrite to replace it')
    get_root_logger(log_level=logging.INFO if args.verbose else logging.WARNING)
    try:
        opt = load_profile_options(args.opt, args.force_yml, args.device)
        compare_opt = None
        if args.compare:
            compare_opt = load_profile_options(args.opt, (args.force_yml or []) + args.compare, args.device)
        result = profile(opt, args.iters, args.warmup, with_floor=not args.no_floor, option_file=args.opt,
                         mem_iters=args.mem_iters, compare_opt=compare_opt, compare=args.compare)
    except (OptionError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from None
    print(format_profile(result))
    if args.json:
        write_json(result, args.json, args.overwrite)
        print(f'\nwrote {args.json}')
    return result
