"""Python, numpy, torch and CUDA RNG states in a training state, one per rank, restorable on another machine.

Data randomness does not depend on these (the sampler seeds every sample), only model-side randomness does.
A state saved on 8 GPUs holds 8 CUDA generator states; resuming on fewer GPUs restores the ones that exist.
"""
import random

import numpy as np
import torch

from basicsr.utils import get_root_logger


def capture_rng_state():
    state = {'python': random.getstate(), 'numpy': np.random.get_state(), 'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    """Restore ``state``; CUDA generators beyond this machine's device count are dropped (not an IndexError)."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'].cpu())
    if state.get('cuda') and torch.cuda.is_available():
        cuda_states = list(state['cuda'])
        count = torch.cuda.device_count()
        for index, cuda_state in enumerate(cuda_states[:count]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
        if len(cuda_states) > count:
            get_root_logger().info(f'RNG state saved with {len(cuda_states)} CUDA devices, {count} here: '
                                   f'restored the first {count}')


def rank_rng_state(resume_state, rank, world_size):
    """This rank's saved RNG state, or None when the state was saved by another number of processes."""
    per_rank = resume_state.get('rng_per_rank')
    if per_rank is not None:
        return per_rank[rank] if len(per_rank) == world_size else None
    return resume_state.get('rng') if world_size == 1 else None


def restore_rank_rng_state(resume_state, rank, world_size):
    """Restore this rank's own RNG state on resume; returns whether there was one to restore."""
    state = rank_rng_state(resume_state, rank, world_size)
    if state is None:
        get_root_logger().info('RNG state not restored: the run was saved with another number of processes '
                               '(data augmentation is unaffected; it is seeded per sample)')
        return False
    restore_rng_state(state)
    return True
