"""``python -m stdsr.train -opt FILE.yml``: BasicSR's training loop, on CPU or CUDA, single or torchrun.

Differences from ``basicsr.train`` (all because it assumes CUDA or loses work):
- the process group is gloo on CPU and nccl on CUDA, and the resume state is mapped to this process's device;
- options are validated (unknown keys are errors), a sample of every dataset decoded, the networks built and the
  output folder probed *before* anything is written: a bad run never archives the previous one;
- errors of bad input print one line (``stdsr.train: error: ...``, exit 2); ``--debug`` or ``STDSR_DEBUG=1``
  shows the traceback;
- ``--auto_resume`` looks in this run's own ``path.experiments_root``;
- checkpoints are written atomically, and the RNG state is restored on resume.
"""
import datetime
import math
import os
import time
from os import path as osp

import stdsr  # noqa: F401  (patches torchvision for basicsr; registers archs, datasets, losses, models)
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.utils import AvgTimer, MessageLogger, get_env_info, set_random_seed
from basicsr.utils.misc import mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str

from stdsr.data.resumable_sampler import ResumableSampler, SeededSampleDataset
from stdsr.runtime.determinism import determinism_from_options
from stdsr.runtime.device import make_prefetcher, prepare_device_options
from stdsr.runtime.dist import barrier, init_dist_from_options, process_device
from stdsr.runtime.logger import add_log_file, init_tb_logger
from stdsr.config.options import parse_options
from stdsr.errors import OptionError
from stdsr.runtime.resume import choose_resume_state
from stdsr.runtime.run_lock import RunLock
from stdsr.runtime.preflight import check_launcher, check_pretrained_networks, decode_first_sample
from stdsr.utils.output_paths import check_writable_dir
from stdsr.runtime.rng_state import restore_rank_rng_state


def find_resume_state(opt):
    """The explicit ``path.resume_state``, or with ``--auto_resume`` the newest state of this experiment, each
    only with its network files of the same iteration (``stdsr/runtime/resume.py``); returns (state, notes)."""
    return choose_resume_state(opt, device=process_device(opt))


def point_networks_at_resume(opt, resume_iter):
    """Load every network saved at ``resume_iter`` from this run's models folder (not the pretrain paths).

    Networks this run never saves (a frozen teacher) keep their own ``path.pretrain_*``.
    """
    for key in [k for k in opt if k.startswith('network_')]:
        suffix = key.replace('network_', '')
        saved = osp.join(opt['path']['models'], f'net_{suffix}_{resume_iter}.pth')
        if osp.isfile(saved):
            opt['path'][f'pretrain_{key}'] = saved
            opt['path'][f'param_key_{suffix}'] = 'params'
            opt['path'][f'strict_load_{suffix}'] = True


def describe_networks(model):
    """One line per network of the model, for the log file (built before the file existed)."""
    lines = []
    for attr in ('net_g', 'net_g_ema', 'net_t'):
        net = getattr(model, attr, None)
        if net is not None:
            bare = model.get_bare_model(net)
            params = sum(p.numel() for p in bare.parameters())
            lines.append(f'{type(model).__name__}.{attr}: {type(bare).__name__} with {params:,} parameters')
    return lines


def build_train_val_loaders(opt):
    """Loaders, sampler, epochs, iterations and the summary lines to log once the log file exists."""
    notes = []
    train_loader = train_sampler = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            train_set = build_dataset(dataset_opt)
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_sampler = ResumableSampler(train_set, opt['world_size'], opt['rank'], ratio, opt['manual_seed'])
            train_loader = build_dataloader(
                SeededSampleDataset(train_set), dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                sampler=train_sampler, seed=opt['manual_seed'])
            if len(train_loader) == 0:
                raise OptionError(f"datasets.train: {len(train_set)} clips x enlarge ratio {ratio} give no full batch "
                                 f"of {dataset_opt['batch_size_per_gpu']} per process")
            iters_per_epoch = len(train_loader)
            total_iters = int(opt['train']['total_iter'])
            total_epochs = math.ceil(total_iters / iters_per_epoch)
            notes.append(f'Training statistics: clips {len(train_set)}, enlarge ratio {ratio}, batch per process '
                        f"{dataset_opt['batch_size_per_gpu']}, world size {opt['world_size']}, "
                        f'iters per epoch {iters_per_epoch}, total epochs {total_epochs}, total iters {total_iters}.')
        elif phase.split('_')[0] == 'val':
            val_set = build_dataset(dataset_opt)
            val_loaders.append(build_dataloader(val_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist']))
            notes.append(f"Number of val clips in {dataset_opt['name']}: {len(val_set)}")
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters, notes


def train_pipeline(argv=None, root_path=None):
    opt, args = parse_options(argv, is_train=True, root_path=root_path)
    check_launcher(args.launcher, 'stdsr.train', args.opt)
    init_dist_from_options(opt, args.launcher)
    prepare_device_options(opt)
    determinism_from_options(opt, is_train=True)
    seed = opt.setdefault('manual_seed', 0)
    set_random_seed(seed + opt['rank'])
    lock = None
    if opt['rank'] == 0:  # one process per run folder, taken before anything is read, archived or written
        check_writable_dir(opt['path']['experiments_root'], 'experiments folder')
        lock = RunLock(opt['path']['experiments_root'], 'experiment folder').acquire()
    try:
        return _train_locked(opt, args)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(opt, args):
    resume_state, resume_notes = find_resume_state(opt)
    # data and model first: bad data, a mismatched teacher or a bad hook path fail here, before any folder
    # is created or renamed
    train_loader, train_sampler, val_loaders, total_epochs, total_iters, notes = build_train_val_loaders(opt)
    decode_first_sample(train_loader.dataset.dataset, 'train')
    for loader in val_loaders:
        decode_first_sample(loader.dataset, f"val ({loader.dataset.opt.get('name')})")
    if resume_state is not None:
        point_networks_at_resume(opt, resume_state['iter'])
    check_pretrained_networks(opt)  # a file that is not a checkpoint (or does not fit) is one line, here
    model = build_model(opt)

    if opt['rank'] == 0:
        if resume_state is None:
            mkdir_and_rename(opt['path']['experiments_root'])
        for key in ('models', 'training_states', 'visualization'):
            os.makedirs(opt['path'][key], exist_ok=True)
        copy_opt_file(args.opt, opt['path']['experiments_root'])
    barrier()
    log_file = osp.join(opt['path']['log'], f"train_{opt['name']}_{time.strftime('%Y%m%d_%H%M%S')}.log")
    logger = add_log_file(log_file if opt['rank'] == 0 else None)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    backend = f", backend {opt['dist_backend']}" if opt['dist'] else ''
    logger.info(f"Device {process_device(opt)}, world size {opt['world_size']}{backend}")
    for note in resume_notes + notes + describe_networks(model):
        logger.info(note)
    tb_logger = init_tb_logger(opt)

    if resume_state is not None:
        model.resume_training(resume_state)
        logger.info(f"Resuming training from epoch {resume_state['epoch']}, iter {resume_state['iter']}.")
        start_epoch, current_iter = resume_state['epoch'], resume_state['iter']
        batch_in_epoch = (resume_state.get('loop') or {}).get('batch_in_epoch', 0)
        train_sampler.set_epoch(start_epoch)
        train_sampler.skip(batch_in_epoch * train_loader.batch_size)
        restore_rank_rng_state(resume_state, opt['rank'], opt['world_size'])
    else:
        start_epoch, current_iter, batch_in_epoch = 0, 0, 0

    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    prefetcher = make_prefetcher(train_loader, opt)
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    logger.info(f'Start training from epoch: {start_epoch}, iter: {current_iter}')
    val_opt = opt.get('val') or {}
    save_freq = int(opt['logger'].get('save_checkpoint_freq', total_iters))
    epoch = start_epoch
    for epoch in range(start_epoch, total_epochs + 1):
        train_sampler.set_epoch(epoch)  # keeps a resume skip for the resumed epoch only
        if epoch != start_epoch:
            batch_in_epoch = 0
        prefetcher.reset()
        train_data = prefetcher.next()
        while train_data is not None:
            data_timer.record()
            current_iter += 1
            if current_iter > total_iters:
                break
            batch_in_epoch += 1
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if current_iter % opt['logger']['print_freq'] == 0:
                log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate()}
                log_vars.update({'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()})
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
            if current_iter % save_freq == 0:
                logger.info('Saving models and training states.')
                model.save(epoch, current_iter, loop_state={'batch_in_epoch': batch_in_epoch})
            if val_loaders and val_opt.get('val_freq') and current_iter % int(val_opt['val_freq']) == 0:
                for val_loader in val_loaders:
                    model.validation(val_loader, current_iter, tb_logger, val_opt.get('save_img', False))
            data_timer.start()
            iter_timer.start()
            train_data = prefetcher.next()
        if current_iter > total_iters:
            break

    consumed = time.time() - start_time
    logger.info(f'End of training. Time consumed: {datetime.timedelta(seconds=int(consumed))}')
    logger.info('Save the latest model.')
    model.save(epoch=-1, current_iter=-1)
    if val_loaders and val_opt:
        for val_loader in val_loaders:
            model.validation(val_loader, min(current_iter, total_iters), tb_logger, val_opt.get('save_img', False))
    if tb_logger is not None:
        tb_logger.close()
    barrier()
    return model
