"""The values of the options: types, ranges and relations, checked in one pass before anything is built.

The key check (``stdsr.config.options``) catches a misspelt key; this catches a wrong value: ``total_iter: abc``
ended in ``int()``'s traceback, ``print_freq: 0`` in a modulo by zero after the previous run was archived, and
``total_iter: 0`` trained nothing and exited 0. Rules go by section and, for the kinds that recur everywhere
(networks, losses, datasets), by key name: every ``*_freq`` is a positive integer, every ``num_*`` a count,
every ``*size*`` a positive size. Integral floats (``val_freq: !!float 1e9``) are accepted and stored as ints.
"""
import numbers
import re

PLAIN_NAME_FORBIDDEN = ('/', '\\', '\0')


def plain_name_problem(value):
    """Why ``value`` cannot be one folder name under a root (``''``, ``'.'``, ``'..'``, separators), or None."""
    if not isinstance(value, str):
        return f'must be a string, got {value!r}'
    if value.strip() in ('', '.', '..'):
        return f"must be a plain folder name, got {value!r}"
    if any(c in value for c in PLAIN_NAME_FORBIDDEN):
        return f"must be a plain folder name without path separators, got {value!r}"
    return None


class _Bad(Exception):
    pass


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_int(value):
    if isinstance(value, bool) or not _is_number(value) or (isinstance(value, float) and not value.is_integer()):
        raise _Bad
    return int(value)


def positive_int(value):
    value = _as_int(value)
    if value < 1:
        raise _Bad
    return value


def count(value):
    value = _as_int(value)
    if value < 0:
        raise _Bad
    return value


MAX_SEED = 2**32 - 1024  # numpy seeds stop at 2**32; each process adds its rank (up to 1024 processes)


def seed(value):
    """A non-negative integer numpy can seed with on every rank (``manual_seed + rank`` < 2**32)."""
    value = count(value)
    if value >= MAX_SEED:
        raise _Bad
    return value


def odd_positive_int(value):
    value = positive_int(value)
    if value % 2 == 0:
        raise _Bad
    return value


def boolean(value):
    if not isinstance(value, bool):
        raise _Bad
    return value


def positive_number(value):
    if not _is_number(value) or not value > 0:
        raise _Bad
    return value


def non_negative_number(value):
    if not _is_number(value) or not value >= 0:
        raise _Bad
    return value


def fraction(value):
    """In [0, 1)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise _Bad
    return value


def size(value):
    """A positive integer, or a list of them (a ``kernel_size: [3, 3]``)."""
    if isinstance(value, (list, tuple)):
        return type(value)(positive_int(v) for v in value)
    return positive_int(value)


def list_of(rule, non_empty=True):
    def check(value):
        if not isinstance(value, (list, tuple)) or (non_empty and not value):
            raise _Bad
        return [rule(v) for v in value]
    return check


def optional(rule):
    def check(value):
        return None if value is None else rule(value)
    check.optional_of = rule
    return check


def integer_at_least(low):
    def check(value):
        value = _as_int(value)
        if value < low:
            raise _Bad
        return value
    check.low = low
    return check


DESCRIPTIONS = {
    positive_int: 'a positive integer', count: 'a non-negative integer', odd_positive_int: 'an odd positive integer',
    boolean: 'true or false', positive_number: 'a positive number', non_negative_number: 'a non-negative number',
    fraction: 'a number in [0, 1)', size: 'a positive integer (or a list of them)',
    seed: f'an integer in [0, {MAX_SEED})',
}


def describe(rule):
    if rule in DESCRIPTIONS:
        return DESCRIPTIONS[rule]
    if hasattr(rule, 'optional_of'):
        return describe(rule.optional_of) + ' or ~'
    if hasattr(rule, 'low'):
        return f'an integer >= {rule.low}'
    return 'a list of ' + 'values of the right kind'


# section rules: key -> rule
TOP_RULES = {'scale': positive_int, 'manual_seed': seed, 'find_unused_parameters': boolean}
TRAIN_RULES = {'total_iter': positive_int, 'warmup_iter': integer_at_least(-1), 'ema_decay': optional(fraction),
               'grad_clip': optional(non_negative_number), 'deterministic': boolean}
OPTIM_RULES = {'lr': positive_number, 'weight_decay': non_negative_number, 'momentum': non_negative_number,
               'eps': positive_number, 'betas': list_of(fraction)}
SCHEDULER_RULES = {'periods': list_of(positive_int), 'restart_weights': list_of(non_negative_number),
                   'eta_min': non_negative_number, 'milestones': list_of(count, non_empty=False),
                   'gamma': positive_number}
LOSS_RULES = {'loss_weight': non_negative_number}
LOGGER_RULES = {'print_freq': positive_int, 'save_checkpoint_freq': positive_int,
                'keep_last_checkpoints': optional(count), 'use_tb_logger': boolean}
VAL_RULES = {'val_freq': optional(positive_int), 'save_img': boolean, 'max_clips': optional(positive_int),
             'chunk_windows': optional(positive_int), 'deterministic': boolean}
METRIC_RULES = {'crop_border': count, 'test_y_channel': boolean}
DATASET_RULES = {'batch_size_per_gpu': positive_int, 'num_worker_per_gpu': count, 'dataset_enlarge_ratio': positive_int,
                 'gt_size': positive_int, 'num_frame': positive_int, 'interval_list': list_of(positive_int),
                 'random_reverse': boolean, 'use_hflip': boolean, 'use_rot': boolean, 'use_shuffle': boolean,
                 'persistent_workers': boolean, 'pin_memory': boolean, 'max_frames': optional(positive_int),
                 'num_prefetch_queue': positive_int, 'scale': positive_int}
DIST_RULES = {'port': positive_int}
# by key name, in every section without a rule of its own for the key (networks, losses, datasets, ...)
NAME_RULES = ((re.compile(r'(^|_)freq$'), positive_int), (re.compile(r'^num_'), count),
              (re.compile(r'(^|_)size($|_)'), size))


def _check(section, where, rules, src, name_rules=True):
    if not isinstance(section, dict):
        return
    for key, value in section.items():
        rule = rules.get(key)
        if rule is None and name_rules and key != 'type':
            rule = next((r for pattern, r in NAME_RULES if pattern.search(str(key))), None)
        if rule is None:
            continue
        try:
            section[key] = rule(value)
        except (_Bad, TypeError, ValueError):
            raise _option_error(f"{src}option '{where}.{key}' must be {describe(rule)}, got {value!r}") from None


def _option_error(message):
    from stdsr.errors import OptionError
    return OptionError(message)


def _sliding_networks(opt):
    """Network keys with a window of frames (a ``num_frame``, and not declared recurrent or single-image)."""
    temporal = opt.get('temporal') or {}
    return [k for k in opt if str(k).startswith('network_') and isinstance(opt[k], dict)
            and opt[k].get('num_frame') is not None and temporal.get(k) not in ('recurrent', 'frame')]


def _check_schedule_covers_training(train, src):
    """A cosine schedule ends with its periods: BasicSR's scheduler has no learning rate past them and fails
    mid-training with a TypeError (e.g. ``--force_yml train:total_iter=5`` over ``periods: [2]``)."""
    sched = train.get('scheduler')
    if not isinstance(sched, dict) or sched.get('type') != 'CosineAnnealingRestartLR':
        return
    periods, total = sched.get('periods') or [], train.get('total_iter')
    weights = sched.get('restart_weights')
    if weights is not None and len(weights) != len(periods):
        raise _option_error(f"{src}option 'train.scheduler.restart_weights' needs one weight per period "
                            f'({len(periods)}), got {len(weights)}')
    if isinstance(total, int) and periods and total > sum(periods):
        raise _option_error(f"{src}option 'train.total_iter: {total}' runs past the end of "
                            f"'train.scheduler.periods: {list(periods)}' (sum {sum(periods)}); lengthen the periods "
                            'or lower total_iter')


MAX_BATCH_BYTES = 16 * 2**30  # a float32 GT batch of one step (one process); far beyond any real recipe


def _check_batch_size(where, dataset, src):
    """batch_size_per_gpu x num_frame x gt_size^2 is allocated at the first step, after the run folder exists: a
    typo there (an extra zero or three) is refused here, before anything is allocated or written."""
    batch, frames, side = (dataset.get(k) for k in ('batch_size_per_gpu', 'num_frame', 'gt_size'))
    if not all(isinstance(v, int) for v in (batch, side)):
        return
    frames = frames if isinstance(frames, int) else 1
    nbytes = batch * frames * 3 * side * side * 4
    if nbytes > MAX_BATCH_BYTES:
        raise _option_error(f"{src}option '{where}.batch_size_per_gpu: {batch}' x num_frame {frames} x gt_size "
                            f'{side}^2 makes a batch of {nbytes / 2**30:,.0f} GiB of GT frames alone, more than '
                            f'{MAX_BATCH_BYTES // 2**30} GiB; lower the batch size or gt_size')


def check_option_values(opt, is_train, src=''):
    """Raise OptionError naming the first option whose value has the wrong type, range or relation."""
    problem = plain_name_problem(opt.get('name'))
    if problem:
        raise _option_error(f"{src}option 'name' {problem} (it names the run's folder)")
    for key in TOP_RULES:
        if key in opt:
            try:
                opt[key] = TOP_RULES[key](opt[key])
            except (_Bad, TypeError, ValueError):
                raise _option_error(f"{src}option '{key}' must be {describe(TOP_RULES[key])}, "
                                    f'got {opt[key]!r}') from None
    for key in [k for k in opt if str(k).startswith('network_')]:
        _check(opt[key], key, {}, src)
        if _sliding_networks({key: opt[key], 'temporal': opt.get('temporal')}):
            _check(opt[key], key, {'num_frame': odd_positive_int}, src)
    train = opt.get('train') or {}
    if is_train:
        _check(train, 'train', TRAIN_RULES, src, name_rules=False)
        for key, section in train.items():
            if str(key).startswith('optim_'):
                _check(section, f'train.{key}', OPTIM_RULES, src)
            elif str(key).endswith('_opt'):
                _check(section, f'train.{key}', LOSS_RULES, src)
        _check(train.get('scheduler'), 'train.scheduler', SCHEDULER_RULES, src)
        _check_schedule_covers_training(train, src)
    _check(opt.get('logger'), 'logger', LOGGER_RULES, src)
    _check(opt.get('dist_params'), 'dist_params', DIST_RULES, src)
    val = opt.get('val') or {}
    _check(val, 'val', VAL_RULES, src, name_rules=False)
    for name, metric in (val.get('metrics') or {}).items():
        _check(metric, f'val.metrics.{name}', METRIC_RULES, src, name_rules=False)
    for phase, dataset in (opt.get('datasets') or {}).items():
        where = f'datasets.{phase}'
        _check(dataset, where, DATASET_RULES, src)
        _check_batch_size(where, dataset, src)
        if dataset.get('persistent_workers') and not dataset.get('num_worker_per_gpu'):
            raise _option_error(f"{src}option '{where}.persistent_workers: true' needs "
                                f"'{where}.num_worker_per_gpu' > 0 (got {dataset.get('num_worker_per_gpu', 0)}); "
                                'set persistent_workers: false to load in the main process')
