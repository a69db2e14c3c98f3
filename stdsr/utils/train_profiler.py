"""Where a training step's time and memory go: per-phase timers, peak memory, and the distillation floor.

The training models call :func:`stdsr.models.efficiency.phase` around their pieces; a :class:`PhaseTimer` set as
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
import resource
import statistics
import time
from collections import OrderedDict
from copy import deepcopy

import torch

MODEL_PHASES = ('teacher_forward', 'student_forward', 'distill_losses', 'backward', 'optimizer_step')
PHASES = ('data_wait', ) + MODEL_PHASES + ('other', )
FLOOR_PHASES = ('student_step', 'teacher_forward')
TARGETS = {'std_over_floor': 1.15, 'losses_share': 0.10, 'data_share': 0.05}


def synchronize(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


class PhaseTimer:
    """Accumulates wall time per named phase within one iteration; CUDA is synchronised around every phase."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.iterations = []
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
        return record


class PeakMemory:
    """Peak memory of a stretch of work.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only), reset before each stretch.
    CPU: the resident set's high-water mark (VmHWM in /proc/self/status), reset by writing 5 to
    /proc/self/clear_refs (Linux >= 4.0); where that is not possible, ``ru_maxrss`` (process-lifetime peak, not
    resettable: the first peak hides later, smaller ones). RSS counts everything the process touches (Python,
    libraries, allocator caches), so compare increments (peak - resident before) rather than absolute values.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.method = 'cuda.max_memory_allocated' if self.device.type == 'cuda' else self._cpu_method()
        self.base = 0

    @staticmethod
    def _cpu_method():
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            return 'VmHWM (reset via /proc/self/clear_refs)'
        except OSError:
            return 'ru_maxrss (process lifetime)'

    @staticmethod
    def _status_kib(field):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        raise KeyError(field)

    def current(self):
        """Bytes in use now (CUDA: allocated by tensors; CPU: resident set)."""
        if self.device.type == 'cuda':
            return torch.cuda.memory_allocated(self.device)
        try:
            return self._status_kib('VmRSS') * 1024
        except (OSError, KeyError):
            return 0

    def reset(self):
        if self.device.type == 'cuda':
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.method.startswith('VmHWM'):
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        self.base = self.current()

    def peak(self):
        """(peak bytes, peak - bytes in use at the last reset)."""
        if self.device.type == 'cuda':
            synchronize(self.device)
            value = torch.cuda.max_memory_allocated(self.device)
        elif self.method.startswith('VmHWM'):
            value = self._status_kib('VmHWM') * 1024
        else:
            value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return value, max(0, value - self.base)


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
    out = OrderedDict()
    out['losses_share'] = std_summary['distill_losses']['median_s'] / step if step else None
    out['data_share'] = std_summary['data_wait']['median_s'] / step if step else None
    out['teacher_share'] = std_summary['teacher_forward']['median_s'] / step if step else None
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
    for name in PHASES + ('step', ):
        s = std[name]
        share = f"{100 * s['median_s'] / step:10.1f}%" if name != 'step' else f"{'':>11}"
        lines.append(f"{name:<18}{s['median_s'] * ms:11.2f}{s['mean_s'] * ms:10.2f}{s['min_s'] * ms:9.2f}"
                     f"{s['max_s'] * ms:9.2f}{share}")
    floor = result.get('floor')
    if floor:
        lines += ['', 'floor (same student, plain ClipVSRModel step + one teacher forward, same batches):']
        for name in FLOOR_PHASES + ('floor', ):
            s = floor[name]
            lines.append(f"{name:<18}{s['median_s'] * ms:11.2f}{s['mean_s'] * ms:10.2f}{s['min_s'] * ms:9.2f}"
                         f"{s['max_s'] * ms:9.2f}")
    mem = result['memory']
    lines += ['', f"peak memory ({mem['method']}):"]
    for label, entry in mem['runs'].items():
        lines.append(f"  {label:<16} peak {entry['peak_bytes'] / 2**20:9.1f} MiB, step increment "
                     f"{entry['increment_bytes'] / 2**20:8.1f} MiB")
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
