"""Where a training step's time and memory go: per-phase timers, peak memory, and the distillation floor.

The training models call :func:`stdsr.runtime.train_efficiency.phase` around their pieces; a :class:`PhaseTimer` set as
``model.phase_timer`` turns those calls into per-iteration timings, so the profile is of the real step. Phases:

- ``data_wait``: fetching the next batch from the loader and copying it to the device (measured by the caller);
- ``teacher_forward``: the frozen teacher on the clip, hooks included (distillation only);
- ``student_forward``: the student on the clip, its hooks and the pixel loss;
- ``distill_losses``: assembling the hooked features and the distillation losses' forward (distillation only);
- ``backward``: the backward of the total loss (student and distillation losses together);
- ``optimizer_step``: gradient clipping, the optimizer step, freeze checks and the EMA update;
- ``other``: the rest of the step (zero_grad, loss reduction, learning-rate update).

The *floor* of a distillation step is what distillation cannot avoid: the same student's plain step plus one
teacher forward. ``STD step / floor`` is then the price of hooks, feature assembly and losses.
"""
import contextlib
import os
import statistics
import time
from collections import OrderedDict
from copy import deepcopy

import torch
from stdsr.utils.timing import synchronize

MODEL_PHASES = ('teacher_forward', 'student_forward', 'distill_losses', 'backward', 'optimizer_step')
PHASES = ('data_wait', ) + MODEL_PHASES + ('other', )
FLOOR_PHASES = ('student_step', 'teacher_forward')
STUDENT_PHASES = ('student_forward', 'backward', 'optimizer_step')
TARGETS = {'std_over_floor': 1.15, 'losses_share': 0.10, 'data_share': 0.05}


class PhaseTimer:
    """Accumulates wall time per named phase within one iteration; CUDA is synchronised around every phase."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.iterations = []
        self.warmup = []  # step seconds of the warm-up iterations (where torch.compile pays its compilation)
        self.current = None

    @contextlib.contextmanager
    def phase(self, name):
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            if self.current is not None:
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - start

    def begin(self):
        self.current = OrderedDict()

    def end(self, step_seconds, keep=True):
        """Close the iteration: ``other`` is the step time not covered by a model phase."""
        record = self.current
        self.current = None
        record['step'] = step_seconds
        record['other'] = max(0.0, step_seconds - sum(record.get(p, 0.0) for p in MODEL_PHASES))
        if keep:
            self.iterations.append(record)
        else:
            self.warmup.append(step_seconds)
        return record

    def time_module_forwards(self, modules):
        """Time each ``{name: module}`` forward as phase ``name`` (via hooks; for sub-phases such as one loss)."""
        handles = []
        for name, module in modules.items():
            starts = []

            def pre_hook(module, inputs, starts=starts):
                synchronize(self.device)
                starts.append(time.perf_counter())

            def post_hook(module, inputs, output, starts=starts, name=name):
                synchronize(self.device)
                start = starts.pop() if starts else None
                if self.current is not None and start is not None:
                    self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - start

            handles += [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(post_hook)]
        return handles


class StepMemory:
    """Peak memory of one training step, two ways.

    ``tensor``: the most bytes held at once by tensors allocated during the step (activations, gradients,
    workspaces; weights and optimizer state that already exist are not counted). CUDA: ``max_memory_allocated``
    minus the bytes allocated before the step. CPU: the running sum of the allocation and free events that
    ``torch.profiler`` records with ``profile_memory=True`` (the CPU allocator keeps no peak statistics); the
    profiler slows the step, so this is measured in separate, untimed iterations.

    ``rss``: the resident set's high-water mark (VmHWM of /proc/self/status, reset by writing 5 to
    /proc/self/clear_refs, Linux >= 4.0) and its rise over the resident set before the step. RSS includes Python,
    libraries and the allocator's cached pages, so it is coarse: memory freed by one step and reused by the next
    does not show as a rise.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.can_reset_rss = self._write_clear_refs()

    @staticmethod
    def _write_clear_refs():
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            return True
        except OSError:
            return False

    @staticmethod
    def _status_bytes(field):
        try:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith(field + ':'):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def measure(self, fn):
        """Run ``fn()`` once; returns {'tensor_peak_bytes', 'rss_peak_bytes', 'rss_rise_bytes', 'method'}."""
        rss_before = self._status_bytes('VmRSS') if self.can_reset_rss and self._write_clear_refs() else None
        if self.device.type == 'cuda':
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            fn()
            synchronize(self.device)
            tensor_peak = torch.cuda.max_memory_allocated(self.device) - before
            method = 'torch.cuda.max_memory_allocated - memory_allocated before the step'
        else:
            tensor_peak = profiled_cpu_peak(fn)
            method = 'torch.profiler(profile_memory=True): peak running sum of CPU allocations during the step'
        rss_peak = self._status_bytes('VmHWM') if rss_before is not None else None
        return OrderedDict(tensor_peak_bytes=tensor_peak, rss_peak_bytes=rss_peak,
                           rss_rise_bytes=None if rss_peak is None else max(0, rss_peak - rss_before), method=method)


def profiled_cpu_peak(fn):
    """Peak bytes held by CPU tensors allocated while ``fn()`` runs (None when the profiler gives no events)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]' and e.device_type()
                  == torch.autograd.DeviceType.CPU]
    except (AttributeError, RuntimeError):
        return None
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def summarize(values):
    """Median, mean, min and max of a list of seconds (zeros when empty)."""
    values = list(values) or [0.0]
    return OrderedDict(median_s=statistics.median(values), mean_s=statistics.fmean(values), min_s=min(values),
                       max_s=max(values))


def summarize_iterations(iterations, names):
    return OrderedDict((name, summarize([it.get(name, 0.0) for it in iterations])) for name in names)


def floor_options(opt):
    """The plain-student twin of a distillation option dict: ClipVSRModel, same student, data and optimizer."""
    floor = deepcopy(opt)
    floor['model_type'] = 'ClipVSRModel'
    floor['name'] = f"{opt['name']}_floor"
    floor.pop('distill', None)
    floor.pop('network_t', None)
    for key in ('pretrain_network_t', 'strict_load_t', 'param_key_t'):
        floor['path'].pop(key, None)
    return floor


def ratios(std_summary, floor_summary=None):
    """The headline ratios of a profile, from median times (``None`` where they do not apply)."""
    step = std_summary['step']['median_s']
    distill = std_summary['teacher_forward']['max_s'] > 0
    out = OrderedDict()
    out['losses_share'] = std_summary['distill_losses']['median_s'] / step if step and distill else None
    out['data_share'] = std_summary['data_wait']['median_s'] / step if step else None
    out['teacher_share'] = std_summary['teacher_forward']['median_s'] / step if step and distill else None
    out['std_over_floor'] = None
    if floor_summary is not None and floor_summary['floor']['median_s'] > 0:
        out['std_over_floor'] = step / floor_summary['floor']['median_s']
    return out


def check_targets(ratio_values):
    """{name: {'value', 'target', 'met'}} for the ratios that were measured."""
    checks = OrderedDict()
    for name, target in TARGETS.items():
        value = ratio_values.get(name)
        if value is None:
            continue
        checks[name] = OrderedDict(value=value, target=target, met=bool(value <= target if name == 'std_over_floor'
                                                                          else value < target))
    return checks


def format_profile(result):
    """Plain-text table of a profile produced by ``scripts/profile_train.py``."""
    ms = 1000.0
    std = result['phases']
    step = std['step']['median_s'] or float('nan')
    lines = [
        f"{result['option_file']} ({result['model_type']}) on {result['device']}, {result['threads']} torch "
        f"thread(s), {result['iters']} iterations after {result['warmup']} warm-up, load average "
        f"{result['load_average_before'][0]:.2f} -> {result['load_average_after'][0]:.2f}",
        f"efficiency: {result['efficiency']}, teacher_inference_mode: {result['teacher_inference_mode']}",
        '',
        f"{'phase':<18}{'median ms':>11}{'mean ms':>10}{'min ms':>9}{'max ms':>9}{'% of step':>11}",
    ]
    loss_rows = [name for name in std if name.startswith('loss:')]
    for name in PHASES[:4] + tuple(loss_rows) + PHASES[4:] + ('step', ):
        s = std[name]
        share = f"{100 * s['median_s'] / step:10.1f}%" if name != 'step' else f"{'':>11}"
        label = f'  {name} fwd' if name.startswith('loss:') else name
        lines.append(f"{label:<18}{s['median_s'] * ms:11.2f}{s['mean_s'] * ms:10.2f}{s['min_s'] * ms:9.2f}"
                     f"{s['max_s'] * ms:9.2f}{share}")
    if result.get('warmup_step_s'):
        lines.append(f"warm-up steps (s): {', '.join(f'{v:.2f}' for v in result['warmup_step_s'])}")
    floor = result.get('floor')
    if floor:
        lines += ['', 'floor (same student, plain ClipVSRModel step + one teacher forward, same batches):']
        for name in FLOOR_PHASES + ('floor', ) + STUDENT_PHASES:
            label = f'  {name}' if name in STUDENT_PHASES else name
            s = floor[name]
            lines.append(f"{label:<18}{s['median_s'] * ms:11.2f}{s['mean_s'] * ms:10.2f}{s['min_s'] * ms:9.2f}"
                         f"{s['max_s'] * ms:9.2f}")
    compare = result.get('compare')
    if compare:
        lines += ['', f"variant --compare {' '.join(compare['force_yml'])} (same batches; efficiency "
                  f"{compare['efficiency']}, teacher_inference_mode {compare['teacher_inference_mode']}"
                  + (f", compiled {compare['compiled']}, first call {compare['compile_seconds']:.1f} s"
                     if compare['compile_seconds'] is not None else '') + '):']
        if compare.get('warmup_step_s'):
            lines.append(f"warm-up steps (s): {', '.join(f'{v:.2f}' for v in compare['warmup_step_s'])}")
        for name in PHASES[1:4] + tuple(loss_rows) + PHASES[4:] + ('step', ):
            if name not in compare['phases'] or name not in std:
                continue
            s, base = compare['phases'][name], std[name]['median_s']
            versus = f"{s['median_s'] / base:9.2f}x" if base else f"{'':>10}"
            label = f'  {name} fwd' if name.startswith('loss:') else name
            lines.append(f"{label:<18}{s['median_s'] * ms:11.2f}{s['mean_s'] * ms:10.2f}{s['min_s'] * ms:9.2f}"
                         f"{s['max_s'] * ms:9.2f}{versus}")
    mem = result['memory']
    if mem:
        lines += ['', f"peak memory of one step ({mem['method']}; RSS: VmHWM):"]
        for label, entry in mem['runs'].items():
            rss = ('n/a' if entry['rss_peak_bytes'] is None else
                   f"{entry['rss_peak_bytes'] / 2**20:.1f} MiB (rise {entry['rss_rise_bytes'] / 2**20:.1f} MiB)")
            tensor = 'n/a' if entry['tensor_peak_bytes'] is None else f"{entry['tensor_peak_bytes'] / 2**20:.1f} MiB"
            lines.append(f'  {label:<10} tensors {tensor:>11}, RSS {rss}')
    lines += ['', 'ratios (medians):']
    for name, value in result['ratios'].items():
        if value is None:
            continue
        check = result['targets'].get(name)
        verdict = '' if check is None else (f"  target {'<=' if name == 'std_over_floor' else '<'} "
                                            f"{check['target']:g}: {'met' if check['met'] else 'MISSED'}")
        lines.append(f'  {name:<16}{value:8.3f}{verdict}')
    return '\n'.join(lines)


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return [float('nan')] * 3
