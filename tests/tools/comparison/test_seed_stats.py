import pytest

from stdsr.tools.comparison.budget_axis import gains_by_budget
from stdsr.tools.comparison.seed_stats import mean_std


def test_spread_is_the_sample_standard_deviation():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([]) == (None, None)


def test_the_budget_axis_reports_the_same_mean_and_spread_as_the_tables():
    diffs = {0: 0.10, 1: -0.20, 2: 0.40}
    per_budget = {800: {'val': {'paired': {'rows': [{'label': 'STD', 'diffs': diffs, 'ahead': 2}]}}}}
    (iters, mean, std, ahead, n), = gains_by_budget(per_budget, 'val')['STD']
    assert (iters, ahead, n) == (800, 2, 3)
    assert (mean, std) == pytest.approx(mean_std(list(diffs.values())))
    assert std == pytest.approx(0.3)
