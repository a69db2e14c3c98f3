"""ShareWeight: lambda = share * mean(pixel) / mean(raw), measured in windows (stdsr/losses/loss_balance.py)."""
import pytest
import torch

from stdsr.losses.loss_balance import ShareWeight


def feed(weight, raws, pixel=1.0, first_iter=1):
    seen = []
    for offset, raw in enumerate(raws):
        weight.observe(pixel, raw, first_iter + offset)
        seen.append(weight.weight)
    return seen


def test_fixed_weight_holds_after_the_first_window():
    weight = ShareWeight(0.5, calibration_iters=2)
    seen = feed(weight, [1.0, 1.0, 0.01, 0.01, 0.01])
    assert seen == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5])  # the raw term falls 100-fold, lambda does not follow


def test_track_re_measures_lambda_every_window_so_the_share_holds():
    weight = ShareWeight(0.5, calibration_iters=2, track=True)
    seen = feed(weight, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    # each window's lambda is used until the next window completes
    assert seen == pytest.approx([0.5, 0.5, 0.5, 5.0, 5.0, 50.0])
    assert 0.01 * seen[-1] == pytest.approx(0.5)  # weighted term back at share * pixel


def test_start_iter_delays_the_window_and_state_resumes_mid_window():
    weight = ShareWeight(0.5, calibration_iters=2, start_iter=2, track=True)
    assert feed(weight, [9.0, 9.0]) == [0.0, 0.0]  # before the window: ignored
    feed(weight, [1.0, 1.0, 0.1], first_iter=3)
    fresh = ShareWeight(0.5, calibration_iters=2, start_iter=2, track=True)
    fresh.load_state_dict(weight.state_dict())
    assert fresh.weight == weight.weight == pytest.approx(0.5)
    assert feed(fresh, [0.1], first_iter=6) == pytest.approx([5.0])


def test_state_saved_before_tracking_loads_as_calibrated():
    old = {'pixel_sum': torch.tensor(2.0, dtype=torch.float64), 'raw_sum': torch.tensor(4.0, dtype=torch.float64),
           'count': torch.tensor(2), 'fixed_weight': torch.tensor(0.25, dtype=torch.float64)}
    weight = ShareWeight(0.5, calibration_iters=2)
    weight.load_state_dict(old)
    assert not weight.calibrating and weight.weight == 0.25


@pytest.mark.parametrize('kwargs', [{'share': 0}, {'calibration_iters': 0}, {'start_iter': -1}])
def test_bad_arguments_are_refused(kwargs):
    args = {'share': 0.1, 'calibration_iters': 2, **kwargs}
    with pytest.raises(ValueError):
        ShareWeight(**args)
