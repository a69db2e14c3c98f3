"""Checks the entry points run before they create, rename or overwrite anything.

A run that dies on its first batch must not have archived the previous run's folder on its way in. So
``stdsr.train`` and ``stdsr.test`` check the launcher, decode one sample of every dataset (which checks the
layout, the GT/LQ scale, ``gt_size`` and that the frames decode), read every checkpoint against its network and
probe that the output folder can be written, and only then touch the disk.
"""
import os
import random
from os import path as osp

import numpy as np
import torch

from stdsr.errors import DataError
from stdsr.errors import LauncherError, UserInputError
from stdsr.runtime.checkpoint import build_with_weights, pretrain_keys, read_weights

LAUNCHER_ENV = {'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'),
                'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')}


def check_launcher(launcher, module, opt_path):
    """A ``--launcher`` must match how the process was started; the message says what to run instead."""
    missing = [name for name in LAUNCHER_ENV.get(launcher, ()) if name not in os.environ]
    if not missing:
        return
    single = f'python -m {module} -opt {opt_path}'
    if launcher == 'pytorch':
        raise LauncherError(f"--launcher pytorch expects to be started by torchrun ({missing[0]} is not set); run "
                            f"'torchrun --nproc_per_node=N -m {module} -opt {opt_path} --launcher pytorch', "
                            f"or '{single}' for one process")
    raise LauncherError(f"--launcher slurm expects to be started by srun ({missing[0]} is not set); run "
                        f"'srun python -m {module} -opt {opt_path} --launcher slurm' inside a SLURM allocation, "
                        f"or 'torchrun --nproc_per_node=N -m {module} -opt {opt_path} --launcher pytorch', "
                        f"or '{single}' for one process")


class _PreservedRNG:
    """Decoding a training sample draws crops and flips; a check must not shift the run's random streams."""

    def __enter__(self):
        self.state = (random.getstate(), np.random.get_state(), torch.get_rng_state())

    def __exit__(self, *exc):
        random.setstate(self.state[0])
        np.random.set_state(self.state[1])
        torch.set_rng_state(self.state[2])


def decode_first_sample(dataset, phase):
    """Read item 0 of ``dataset``: a layout, scale, size or decoding problem fails here, naming the dataset."""
    if len(dataset) == 0:
        raise DataError(f'datasets.{phase}: the dataset holds no clips')
    with _PreservedRNG():
        try:
            return dataset[0]
        except DataError as err:
            raise DataError(f'datasets.{phase}: {err}') from None


def check_pretrained_networks(opt):
    """Every ``path.pretrain_network_*`` (but the teacher's, checked when it is built) is read and checked against
    its network with the keys BasicSR's loader will use, so a wrong checkpoint fails before results are touched."""
    paths = opt.get('path') or {}
    for net_key in [k for k in opt if str(k).startswith('network_') and k != 'network_t']:
        ckpt = paths.get(f'pretrain_{net_key}')
        if not ckpt:
            continue
        suffix = net_key.replace('network_', '')
        where = f'path.pretrain_{net_key}'
        if not osp.isfile(ckpt):
            raise UserInputError(f'option {where}: no such file {ckpt}')
        prefer = pretrain_keys(paths.get(f'param_key_{suffix}'))
        if paths.get(f'strict_load_{suffix}', True):
            build_with_weights(opt[net_key], ckpt, prefer=prefer, what=f'option {where}', load=False,
                               label=lambda key: f"option {where} ({ckpt} [{key}]) for {net_key} "
                               f"({opt[net_key]['type']})")
        else:
            read_weights(ckpt, prefer=prefer, what=f'option {where}')
