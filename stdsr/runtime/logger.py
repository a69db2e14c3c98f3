"""Logging set-up shared by the train and test entry points.

BasicSR's ``get_root_logger`` configures its logger once per process (the first caller wins, and INFO is
enabled only when that first call passes a log file). Datasets are built before the experiment folder
exists, so the file handler is attached here afterwards, replacing any from an earlier run in-process.
"""
import logging
from os import path as osp

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info


def add_log_file(log_file):
    """Point BasicSR's root logger at this run's log file (it may have been created earlier without one)."""
    logger = get_root_logger()
    if get_dist_info()[0] == 0:
        logger.setLevel(logging.INFO)
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(handler)  # a previous run in this process
        handler.close()
    if log_file:
        handler = logging.FileHandler(log_file, 'a')
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
        logger.addHandler(handler)
    return logger


def init_tb_logger(opt):
    """A tensorboard writer on rank 0 when ``logger.use_tb_logger`` asks for one (never for debug runs)."""
    wanted = bool(opt['logger'].get('use_tb_logger')) and opt['rank'] == 0 and 'debug' not in opt['name']
    opt['logger']['use_tb_logger'] = wanted  # BasicSR's MessageLogger writes scalars only when this is set
    if not wanted:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        get_root_logger().warning('tensorboard is not installed: logging to the text log only')
        opt['logger']['use_tb_logger'] = False
        return None
    return SummaryWriter(log_dir=osp.join(opt['path']['experiments_root'], 'tb_logger'))
