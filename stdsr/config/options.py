"""Option files: read YAML, apply ``--force_yml``, reject unknown keys, resolve paths.

BasicSR silently ignores keys it does not read, so a typo such as ``batch_size_per_gpus`` trains with a
default nobody asked for. Here every section is checked: fixed sections against the key sets below,
registry-typed sections (networks, losses, optimizers, schedulers) against the constructor's signature,
and datasets against their ``OPTION_KEYS``.
"""
import argparse
import inspect
import os
from collections import OrderedDict
from os import path as osp

import torch

from stdsr.config.yaml_reader import SafeOptionLoader, read_yaml_file, read_yaml_text
from stdsr.config.keys import check_keys  # noqa: F401  (imported from here too)
from stdsr.errors import OptionError


# the one safe reader (stdsr/config/yaml_reader.py): kept under this name for the callers that load with it
OptionLoader = SafeOptionLoader


TOP_LEVEL_KEYS = {
    'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'path', 'train', 'val', 'logger',
    'dist_params', 'find_unused_parameters', 'temporal', 'distill',
    # filled in by the entry points, accepted so a saved/copied option file parses again
    'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path'
}
PATH_KEYS = {
    'resume_state', 'experiments_root', 'results_root', 'models', 'training_states', 'log', 'visualization',
    'ignore_resume_networks', 'root'
}
PATH_KEY_PREFIXES = ('pretrain_network_', 'strict_load_', 'param_key_')
TRAIN_KEYS = {
    'ema_decay', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt', 'grad_clip', 'nan_policy', 'efficiency',
    'deterministic'
}
TRAIN_KEY_PREFIXES = ('optim_', )
VAL_KEYS = {'val_freq', 'save_img', 'metrics', 'suffix', 'max_clips', 'chunk_windows', 'deterministic'}
METRIC_KEYS = {'type', 'crop_border', 'test_y_channel', 'better', 'input_order'}
LOGGER_KEYS = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb', 'keep_last_checkpoints'}
DIST_KEYS = {'backend', 'port'}
# train.efficiency (stdsr/runtime/train_efficiency.py): key -> accepted values
EFFICIENCY_VALUES = {'channels_last': (True, False), 'amp': (None, False, 'bf16', 'fp16'), 'compile': (True, False)}
TEMPORAL_MODES = ('sliding', 'recurrent', 'frame')


def accepted_kwargs(fn):
    """Keyword names ``fn`` accepts, or None when it takes ``**kwargs`` (nothing can be checked then)."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None
    return {name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {'self'}


def check_typed_section(section, where, registry_get, source='', skip=()):
    """Check a ``{type: X, **kwargs}`` section against the signature of what ``type`` names."""
    if not isinstance(section, dict):
        raise OptionError(f"{source}option '{where}' must be a mapping with a 'type' key, got {section!r}")
    if 'type' not in section:
        raise OptionError(f"{source}option '{where}' has no 'type' key")
    try:
        target = registry_get(section['type'])
    except KeyError as err:
        raise OptionError(f"{source}option '{where}.type': {err}") from None
    valid = accepted_kwargs(target.__init__ if inspect.isclass(target) else target)
    if valid is not None:
        check_keys(section, where, valid | {'type'} | set(skip), source=source)
    return target


def optimizer_class(name):
    """Any optimizer in ``torch.optim`` by class name (BasicSR's base model knows only Adam)."""
    cls = getattr(torch.optim, str(name), None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        raise KeyError(f"no optimizer named '{name}' in torch.optim")
    return cls


def scheduler_class(name):
    from basicsr.models import lr_scheduler
    known = {
        'MultiStepLR': lr_scheduler.MultiStepRestartLR,
        'MultiStepRestartLR': lr_scheduler.MultiStepRestartLR,
        'CosineAnnealingRestartLR': lr_scheduler.CosineAnnealingRestartLR
    }
    if name not in known:
        raise KeyError(f"scheduler '{name}' is not supported; use one of {sorted(known)}")
    return known[name]


def validate_options(opt, is_train, source=''):
    """Reject unknown or impossible options before anything is built or written."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    src = f'{source}: ' if source else ''
    check_keys(opt, '', TOP_LEVEL_KEYS, prefixes=('network_', ), source=src)
    for key in ('name', 'model_type'):
        if key not in opt:
            raise OptionError(f"{src}missing required option '{key}'")
    try:
        MODEL_REGISTRY.get(opt['model_type'])
    except KeyError as err:
        raise OptionError(f"{src}option 'model_type': {err}") from None
    for key in opt:
        if str(key).startswith('network_'):
            check_typed_section(opt[key], key, ARCH_REGISTRY.get, src)
    check_keys(opt.get('path') or {}, 'path', PATH_KEYS, PATH_KEY_PREFIXES, src)
    check_keys(opt.get('logger') or {}, 'logger', LOGGER_KEYS, source=src)
    check_keys(opt.get('dist_params') or {}, 'dist_params', DIST_KEYS, source=src)
    for net_key, mode in (opt.get('temporal') or {}).items():
        if net_key not in opt:
            raise OptionError(f"{src}option 'temporal.{net_key}' names a network that is not defined")
        if mode not in TEMPORAL_MODES:
            raise OptionError(f"{src}option 'temporal.{net_key}' must be one of {TEMPORAL_MODES}, got '{mode}'")

    if opt.get('distill') is not None or (is_train and opt['model_type'] == 'DistillVSRModel'):
        from stdsr.config.distill import check_distill_options
        check_distill_options(opt, src)

    val = opt.get('val') or {}
    check_keys(val, 'val', VAL_KEYS, source=src)
    for name, metric in (val.get('metrics') or {}).items():
        check_keys(metric, f'val.metrics.{name}', METRIC_KEYS, source=src)

    train = opt.get('train') or {}
    if is_train:
        if not train:
            raise OptionError(f"{src}missing required option 'train'")
        check_keys(train, 'train', TRAIN_KEYS, TRAIN_KEY_PREFIXES, src, suffixes=('_opt', ))
        for key, section in train.items():
            if key.endswith('_opt') and section is not None:
                check_typed_section(section, f'train.{key}', LOSS_REGISTRY.get, src)
            elif key.startswith('optim_'):
                check_typed_section(section, f'train.{key}', optimizer_class, src, skip=('params', ))
        if 'scheduler' in train:
            check_typed_section(train['scheduler'], 'train.scheduler', scheduler_class, src, skip=('optimizer', ))
        check_efficiency(train.get('efficiency'), src)
        if 'total_iter' not in train:
            raise OptionError(f"{src}missing required option 'train.total_iter'")

    datasets = opt.get('datasets') or {}
    for phase, dataset_opt in datasets.items():
        where = f'datasets.{phase}'
        if not isinstance(dataset_opt, dict) or 'type' not in dataset_opt:
            raise OptionError(f"{src}option '{where}' must be a mapping with a 'type' key")
        if phase.split('_')[0] not in ('train', 'val', 'test'):
            raise OptionError(f"{src}option '{where}': phase must start with train, val or test")
        try:
            dataset_cls = DATASET_REGISTRY.get(dataset_opt['type'])
        except KeyError as err:
            raise OptionError(f"{src}option '{where}.type': {err}") from None
        valid = getattr(dataset_cls, 'OPTION_KEYS', None)
        if valid is not None:
            check_keys(dataset_opt, where, valid, source=src)
    if is_train and 'train' not in datasets:
        raise OptionError(f"{src}missing required option 'datasets.train'")
    from stdsr.config.schema import check_option_values
    check_option_values(opt, is_train, src)


def check_efficiency(section, source=''):
    """``train.efficiency``: known keys with accepted values (a YAML 'yes' or 'bf' should not pass silently)."""
    if section is None:
        return
    if not isinstance(section, dict):
        raise OptionError(f"{source}option 'train.efficiency' must be a mapping, got {section!r}")
    check_keys(section, 'train.efficiency', set(EFFICIENCY_VALUES), source=source)
    for key, value in section.items():
        accepted = EFFICIENCY_VALUES[key]
        if not any(value is a or (type(value) is type(a) and value == a) for a in accepted):
            shown = ', '.join('~' if a is None else str(a).lower() if isinstance(a, bool) else a for a in accepted)
            raise OptionError(f"{source}option 'train.efficiency.{key}' must be one of {shown}, got {value!r}")


def load_yaml(path):
    """Read an option file; a missing or malformed file is an OptionError naming it."""
    if not osp.isfile(path):
        raise OptionError(f'option file not found: {path}')
    opt = read_yaml_file(path, OptionError, 'option file')
    if not isinstance(opt, dict):
        raise OptionError(f'{path}: the top level must be a mapping of options')
    return opt


def apply_force_yml(opt, entries):
    """Apply ``a:b:c=value`` overrides; the path must exist except for its last key under a mapping."""
    for entry in entries or []:
        if '=' not in entry:
            raise OptionError(f"--force_yml '{entry}': expected KEY[:SUBKEY...]=VALUE")
        keys, value = entry.split('=', 1)
        keys = [k.strip() for k in keys.strip().split(':')]
        node = opt
        for depth, key in enumerate(keys[:-1]):
            if not isinstance(node, dict) or key not in node:
                raise OptionError(f"--force_yml '{entry}': no option '{':'.join(keys[:depth + 1])}'")
            node = node[key]
        if not isinstance(node, dict):
            raise OptionError(f"--force_yml '{entry}': '{':'.join(keys[:-1])}' is not a mapping")
        node[keys[-1]] = read_yaml_text(value.strip(), f"--force_yml '{entry}'") if value.strip() else None
    return opt


def build_arg_parser(is_train=True):
    parser = argparse.ArgumentParser(description=('Train' if is_train else 'Test') + ' with an stdsr option file.')
    parser.add_argument('-opt', type=str, required=True, help='Path to the option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true', help='resume from the latest state of this run')
    parser.add_argument('--debug', action='store_true', help='print and validate every few iterations')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help='set by old launchers; unused')
    parser.add_argument('--force_yml', nargs='+', default=None, help='override options, e.g. train:total_iter=10')
    return parser


def resolve_num_gpu(opt, source=''):
    """``auto`` means every visible CUDA device (0 on a CPU machine); asking for GPUs without CUDA is an error."""
    num_gpu = opt.get('num_gpu', 'auto')
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if num_gpu == 'auto':
        num_gpu = available
    if not isinstance(num_gpu, int) or num_gpu < 0:
        raise OptionError(f"{source}option 'num_gpu' must be 'auto' or a non-negative integer, got {num_gpu!r}")
    if num_gpu > available:
        raise OptionError(f"{source}option 'num_gpu: {num_gpu}' but {available} CUDA device(s) are available; "
                          "use 'num_gpu: 0' (CPU) or 'auto'")
    return num_gpu


# what marks a folder as a run of its own (training or test): a run folder may not hold one of these
RUN_MARKERS = ('models', 'training_states', 'metrics.md')


def _holds_other_runs(folder):
    """The first sub-folder of ``folder`` that is a run (or a run's lock), or None."""
    if not osp.isdir(folder):
        return None
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file() and entry.name.startswith('.') and entry.name.endswith('.lock'):
            return entry.path
        if entry.is_dir() and any(osp.exists(osp.join(entry.path, marker)) for marker in RUN_MARKERS):
            return entry.path
    return None


def check_run_folder(root, key, root_path, parent):
    """``path.<key>`` decides what a new run archives (renames) and where it writes: it may not contain the folder
    that holds the runs (``<root>/<parent>``), nor be or contain the working or the home folder, nor hold another
    run. Checked before anything moves."""
    real = osp.realpath(root)
    # the runs' parent itself is refused below only when it holds a run (a harness may keep one run there)
    shared = [(osp.join(root_path, parent), False), (root_path, True), (os.getcwd(), True), (osp.expanduser('~'), True)]
    for folder, or_equal in shared:
        folder = osp.realpath(folder)
        if (or_equal and real == folder) or folder.startswith(real.rstrip(os.sep) + os.sep):
            raise OptionError(f"option 'path.{key}': {root} is or contains {folder}, which holds other runs; "
                              f'a run needs a folder of its own, e.g. {osp.join(root_path, parent, "<name>")}')
    other = _holds_other_runs(root)
    if other:
        raise OptionError(f"option 'path.{key}': {root} holds another run ({other}); a run needs a folder of its "
                          f'own, e.g. {osp.join(root, "<name>")}')


def resolve_paths(opt, is_train, root_path):
    """Fill BasicSR's derived paths; an explicit ``path.experiments_root`` / ``results_root`` is honoured (``~``
    expanded) and checked (:func:`check_run_folder`)."""
    opt.setdefault('path', OrderedDict())
    paths = opt['path']
    for key, val in list(paths.items()):
        if isinstance(val, str) and ('resume_state' in key or 'pretrain_network' in key or key.endswith('_root')):
            paths[key] = osp.expanduser(val)
    if is_train:
        root = osp.abspath(paths.get('experiments_root') or osp.join(root_path, 'experiments', opt['name']))
        check_run_folder(root, 'experiments_root', root_path, 'experiments')
        paths['experiments_root'] = root
        paths['models'] = osp.join(root, 'models')
        paths['training_states'] = osp.join(root, 'training_states')
        paths['log'] = root
        paths['visualization'] = osp.join(root, 'visualization')
    else:
        root = osp.abspath(paths.get('results_root') or osp.join(root_path, 'results', opt['name']))
        check_run_folder(root, 'results_root', root_path, 'results')
        paths['results_root'] = root
        paths['log'] = root
        paths['visualization'] = osp.join(root, 'visualization')
    return opt


def _file_error(path, is_train):
    """The message the option file alone fails validation with, or None."""
    try:
        validate_options(load_yaml(path), is_train, source=path)
    except OptionError as err:
        return str(err)
    return None


def parse_options(argv=None, is_train=True, root_path=None):
    """Parse the command line and option file into BasicSR's options dict (no process group, nothing written).

    Returns ``(opt, args)``. Distributed fields (``dist``, ``rank``, ``world_size``) are filled by
    :func:`stdsr.runtime.dist.init_dist_from_options` afterwards.
    """
    args = build_arg_parser(is_train).parse_args(argv)
    opt = load_yaml(args.opt)
    apply_force_yml(opt, args.force_yml)
    try:
        validate_options(opt, is_train, source=args.opt)
    except OptionError as err:
        if args.force_yml and _file_error(args.opt, is_train) != str(err):
            validate_options(opt, is_train, source='--force_yml')  # an override's fault: blame the flag
        raise
    opt['is_train'] = is_train
    opt['auto_resume'] = args.auto_resume
    opt['root_path'] = osp.abspath(root_path or os.getcwd())
    opt['num_gpu'] = resolve_num_gpu(opt, source=f'{args.opt}: ')
    opt.setdefault('logger', OrderedDict())
    opt['logger'].setdefault('print_freq', 100)
    opt['logger'].setdefault('use_tb_logger', False)
    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    for phase, dataset in (opt.get('datasets') or {}).items():
        dataset['phase'] = phase.split('_')[0]
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            if isinstance(dataset.get(key), str):
                dataset[key] = osp.expanduser(dataset[key])
    resolve_paths(opt, is_train, opt['root_path'])
    if is_train and 'debug' in opt['name']:
        if 'val' in opt:
            opt['val']['val_freq'] = 8
        opt['logger']['print_freq'] = 1
        opt['logger']['save_checkpoint_freq'] = 8
    return opt, args
