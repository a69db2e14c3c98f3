"""stdsr.metrics.vsr_metrics: PSNR/SSIM on Y as BasicSR computes them, tOF, and clip-then-set averaging."""
import math

import numpy as np
import pytest

import stdsr  # noqa: F401  (before basicsr)
from basicsr.metrics import calculate_psnr, calculate_ssim
from e2e_helpers import textured
from stdsr.metrics import vsr_metrics as vm


def test_psnr_of_a_constant_offset_matches_the_hand_computed_value():
    gt = np.full((24, 20, 3), 100, np.uint8)
    sr = gt + np.uint8(3)  # every channel +3 -> Y +3 * (65.481 + 128.553 + 24.966) / 255
    dy = 3 * 219.0 / 255.0
    assert vm.psnr_y(sr, gt) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-4)
    assert vm.ssim_y(gt, gt) == pytest.approx(1.0)
    # a difference confined to a 2-pixel border disappears with crop_border=2 (BasicSR: inf for identical images)
    framed = gt.copy()
    framed[:2] = 0
    assert math.isfinite(vm.psnr_y(framed, gt)) and vm.psnr_y(framed, gt, crop_border=2) == float('inf')


@pytest.mark.parametrize('crop_border', [0, 4])
def test_psnr_ssim_match_basicsr(crop_border):
    gt = textured(48, 40, seed=1)
    noise = np.random.default_rng(2).normal(0, 6, gt.shape)
    sr = np.clip(gt + noise, 0, 255).astype(np.uint8)
    for ours, theirs in ((vm.psnr_y, calculate_psnr), (vm.ssim_y, calculate_ssim)):
        expected = theirs(sr, gt, crop_border=crop_border, test_y_channel=True)
        assert ours(sr, gt, crop_border) == pytest.approx(expected, abs=1e-9)
    assert 20 < vm.psnr_y(sr, gt, crop_border) < 40 and 0.3 < vm.ssim_y(sr, gt, crop_border) < 1


def test_clip_then_set_averaging():
    gt = [textured(32, 32, seed=s) for s in range(3)]
    sr = [np.clip(g.astype(int) + d, 0, 255).astype(np.uint8) for g, d in zip(gt, (2, 4, 8))]
    clip = vm.clip_metrics(sr, gt)
    assert clip['num_frames'] == 3 and clip['tof'] >= 0
    assert clip['psnr'] == pytest.approx(np.mean([vm.psnr_y(s, g) for s, g in zip(sr, gt)]))
    assert clip['per_frame']['psnr'][0] > clip['per_frame']['psnr'][1] > clip['per_frame']['psnr'][2]
    one = vm.clip_metrics(sr[:1], gt[:1])  # a one-frame clip has no tOF
    assert math.isnan(one['tof'])
    # each clip counts once, however many frames it has (frame-weighted would give a different number)
    avg = vm.average_over_clips({'long': clip, 'short': one}, ('psnr', 'tof'))
    assert avg['psnr'] == pytest.approx((clip['psnr'] + one['psnr']) / 2)
    assert avg['psnr'] != pytest.approx(np.mean(clip['per_frame']['psnr'] + one['per_frame']['psnr']))
    assert avg['tof'] == pytest.approx(clip['tof'])  # the NaN of the one-frame clip is left out


def test_tof_is_zero_for_exact_sr_and_positive_for_temporal_jitter():
    gt = [textured(48, 48, shift_x=0.7 * t, seed=3) for t in range(6)]
    assert vm.tof(gt, gt) == 0.0
    jitter = [0, 1.5, -1.0, 2.0, -1.5, 1.0]
    jittered = [textured(48, 48, shift_x=0.7 * t + j, seed=3) for t, j in enumerate(jitter)]
    brighter = [np.clip(f.astype(int) + 5, 0, 255).astype(np.uint8) for f in gt]  # wrong, but consistent in time
    assert vm.tof(jittered, gt) > 0.5
    assert vm.tof(brighter, gt) < 0.2 * vm.tof(jittered, gt)
    assert vm.tof(jittered, gt, crop_border=4) > 0.5
