"""ResumableSampler: the epoch order depends on the run's seed, and resuming mid-epoch skips exactly what was used."""
import stdsr  # noqa: F401
from stdsr.data.resumable_sampler import ResumableSampler


def order(seed, epoch=0, size=20, **kwargs):
    sampler = ResumableSampler(list(range(size)), seed=seed, **kwargs)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sample_order_depends_on_the_seed_and_the_epoch():
    indices = {seed: [i for i, _ in order(seed)] for seed in (0, 1, 2)}
    assert len({tuple(v) for v in indices.values()}) == 3  # a seed study must not repeat one data order
    assert all(sorted(v) == list(range(20)) for v in indices.values())
    assert [i for i, _ in order(0, epoch=1)] != indices[0]
    assert order(0) == order(0)  # and it is reproducible


def test_resume_skips_the_samples_already_used():
    full = order(3, ratio=2)
    sampler = ResumableSampler(list(range(20)), seed=3, ratio=2)
    sampler.set_epoch(0)
    sampler.skip(7)
    assert list(sampler) == full[7:] and len(sampler) == len(full) - 7


def test_an_epoch_longer_than_the_bound_is_refused_before_its_order_is_allocated():
    import pytest
    from stdsr.data.resumable_sampler import MAX_EPOCH_SAMPLES
    from stdsr.errors import OptionError
    with pytest.raises(OptionError, match=r'20 clips x 10000000 = 200,000,000 samples per epoch, more than'):
        ResumableSampler(list(range(20)), ratio=10**7)
    assert len(ResumableSampler(list(range(20)), ratio=MAX_EPOCH_SAMPLES // 20)) == MAX_EPOCH_SAMPLES
