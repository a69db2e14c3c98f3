"""Sampling that makes every training sample a pure function of (seed, epoch, position).

BasicSR draws crops and flips from each worker's global RNG, so a resumed run, a different number of
workers or a different number of processes all see different augmentations. Here the sampler hands the
dataset a per-sample seed derived from the global position of the sample in the epoch's permutation:

- a run resumed mid-epoch skips the samples already used and sees exactly the batches an uninterrupted
  run would have seen;
- K processes with batch B see, in their first step, the same samples with the same augmentation as one
  process with batch K*B (same permutation as BasicSR's ``EnlargedSampler``, sharded the same way).
"""
import math
import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from stdsr.errors import OptionError

_PERMUTATION_STREAM = 1  # spawn key: the order's seed stream is independent of the per-sample seeds
_SEED_MOD = 2**31 - 1
# an epoch's sample order is one int64 permutation of clips x dataset_enlarge_ratio: bounded (800 MB) before
# anything is allocated; dataset_enlarge_ratio: 1000000000 asked for 96 GB once training had started
MAX_EPOCH_SAMPLES = 10**8


def sample_seed(seed, epoch, position):
    """A well-mixed 31-bit seed for one sample (SeedSequence avoids correlated neighbouring seeds)."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0]) % _SEED_MOD


def permutation_seed(seed, epoch):
    """Seed of an epoch's sample order: a function of the run's seed too, so different seeds see different orders
    (a seed study would otherwise repeat one data order and understate the run-to-run spread)."""
    state = np.random.SeedSequence([seed, epoch], spawn_key=(_PERMUTATION_STREAM, )).generate_state(1)
    return int(state[0]) % _SEED_MOD


class ResumableSampler(Sampler):
    """``EnlargedSampler`` with a start position and per-sample seeds; yields ``(index, seed)`` pairs."""

    def __init__(self, dataset, num_replicas=1, rank=0, ratio=1, seed=0):
        self.dataset_size = len(dataset)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.start = 0
        self.num_samples = math.ceil(self.dataset_size * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas
        if self.total_size > MAX_EPOCH_SAMPLES:
            raise OptionError(f"option 'datasets.train.dataset_enlarge_ratio': {self.dataset_size} clips x {ratio} = "
                              f'{self.total_size:,} samples per epoch, more than {MAX_EPOCH_SAMPLES:,} (their order '
                              f'alone would take {self.total_size * 8 / 1e9:,.0f} GB); an epoch only needs to be '
                              'long enough to not restart too often: lower the ratio')

    def set_epoch(self, epoch):
        """Start ``epoch`` from its beginning (a skip set earlier applies to one epoch only)."""
        if epoch != self.epoch:
            self.start = 0
        self.epoch = epoch

    def skip(self, num_samples):
        """Leave out this process's first ``num_samples`` samples of the current epoch (resume)."""
        self.start = min(int(num_samples), self.num_samples)

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(permutation_seed(self.seed, self.epoch))
        perm = torch.randperm(self.total_size, generator=g).tolist()
        positions = range(self.rank, self.total_size, self.num_replicas)[self.start:]
        # lazily: a seed is derived only when the loader asks for that sample, not for the whole epoch up front
        return ((perm[p] % self.dataset_size, sample_seed(self.seed, self.epoch, p)) for p in positions)

    def __len__(self):
        return self.num_samples - self.start


class SeededSampleDataset(Dataset):
    """Seeds python, numpy and torch RNGs from the sampler's per-sample seed, then reads the sample."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.opt = getattr(dataset, 'opt', None)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        return self.dataset[index]
