"""Logging set-up shared by the train and test entry points, and the one reader of its training lines.

BasicSR's ``get_root_logger`` configures its logger once per process (the first caller wins, and INFO is
enabled only when that first call passes a log file). Datasets are built before the experiment folder
exists, so the file handler is attached here afterwards, replacing any from an earlier run in-process.
"""
import logging
import re
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


# BasicSR's training line: [name..][epoch:  1, iter:     100, lr:(1.000e-03,)] [eta: 0:30:00, time (data): 0.9 (0.0)]
# l_pix: 1.2e-02 ...
TRAIN_LINE = re.compile(r'iter:\s*(?P<iter>[\d,]+), lr:\(.*?\)\]\s*(?:\[eta: (?P<eta>[^,\]]+), '
                        r'time \(data\): (?P<time>[\d.]+) \([\d.]+\)\])?(?P<losses>.*)$')
LOSS_TERM = re.compile(r'(\w+): ([-+]?[\d.]+(?:e[-+]?\d+)?|nan|inf)')


def parse_train_line(line):
    """``{'iter', 'eta', 'time', 'values'}`` of one of BasicSR's training log lines (``values``: every logged
    ``name: number`` in order, losses, lambdas and shares alike; ``eta``/``time`` None when absent), or None for
    any other line. The live progress of ``make demo`` and the harness's term shares both read logs through it."""
    match = TRAIN_LINE.search(line)
    if match is None:
        return None
    return {'iter': int(match['iter'].replace(',', '')), 'eta': match['eta'],
            'time': float(match['time']) if match['time'] is not None else None,
            'values': {name: float(value) for name, value in LOSS_TERM.findall(match['losses'])}}
