"""VSR benchmark metrics: PSNR/SSIM on Y per frame, tOF per clip, and the clip-then-set averaging of the literature.

``psnr_y`` and ``ssim_y`` are registered in BasicSR's ``METRIC_REGISTRY``, so a validation section may name them
(``type: psnr_y``, ``crop_border: 0``) as it names ``calculate_psnr``.

PSNR and SSIM follow BasicSR's ``calculate_psnr`` / ``calculate_ssim`` with ``test_y_channel=True`` exactly
(same Y conversion, same border crop, same 11x11 Gaussian SSIM window), but the Y channel of a frame is computed
once and shared by PSNR, SSIM and tOF. Frames are uint8 HWC BGR images, i.e. SR outputs are quantised to 8 bits
first, as when they are saved to PNG (see :func:`tensor_to_frames`).

tOF (temporal consistency, as TecoGAN, Chu et al. 2020): for each pair of consecutive frames (t-1, t) the dense
optical flow of the SR pair and of the GT pair are computed with OpenCV's Farneback method on the Y channel
(:data:`FARNEBACK_PARAMS`); their difference's Euclidean length per pixel (the end-point error) is averaged over
the pixels left after the border crop, then over the N-1 pairs. Lower is better; 0 means the SR clip moves exactly
like the GT clip. Flow is computed on the full frames (more context near the edges) and only then cropped.
"""
import math

import cv2
import numpy as np

from basicsr.utils.color_util import bgr2ycbcr
from basicsr.utils.registry import METRIC_REGISTRY

from stdsr.utils.frames import tensor_to_frames  # noqa: F401  (re-exported)

METRIC_NAMES = ('psnr', 'ssim', 'tof')
# OpenCV's documented example values, also used by TecoGAN's tOF: pyramid scale 0.5, 3 levels, 15x15 averaging
# window, 3 iterations per level, 5-pixel polynomial neighbourhood with Gaussian sigma 1.2, no flags.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)

_SSIM_C1 = (0.01 * 255)**2
_SSIM_C2 = (0.03 * 255)**2


def y_channel(img):
    """uint8 (or [0, 255] float) BGR image -> float32 Y of BT.601 YCbCr in [16, 235], unrounded (BasicSR's
    ``to_y_channel``). Single-channel images are returned as they are."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return bgr2ycbcr(img.astype(np.float32) / 255., y_only=True) * 255.
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f'expected an HxW or HxWx3 image, got shape {img.shape}')
    return img.astype(np.float32)


def crop(img, border):
    """Drop ``border`` pixels on each side (BasicSR's ``crop_border``); 0 keeps everything."""
    if border < 0:
        raise ValueError(f'crop_border must be >= 0, got {border}')
    if border == 0:
        return img
    if min(img.shape[:2]) <= 2 * border:
        raise ValueError(f'crop_border {border} leaves nothing of a {img.shape[0]}x{img.shape[1]} image')
    return img[border:-border, border:-border, ...]


def _check_same_shape(img, img2, what='images'):
    if img.shape != img2.shape:
        raise ValueError(f'{what} differ in shape: {img.shape} vs {img2.shape}')


def psnr_from_y(y, y2, crop_border=0):
    """PSNR in dB of two Y images (peak 255); inf when they are identical, like BasicSR."""
    _check_same_shape(y, y2)
    diff = crop(y, crop_border).astype(np.float64) - crop(y2, crop_border).astype(np.float64)
    mse = np.mean(diff**2)
    return float('inf') if mse == 0 else float(10. * np.log10(255. * 255. / mse))


def ssim_from_y(y, y2, crop_border=0):
    """SSIM (Wang et al. 2004) of two Y images: 11x11 Gaussian window (sigma 1.5), valid region only, as BasicSR."""
    _check_same_shape(y, y2)
    y, y2 = crop(y, crop_border).astype(np.float64), crop(y2, crop_border).astype(np.float64)
    if min(y.shape[:2]) < 11:
        raise ValueError(f'SSIM needs images of at least 11x11 pixels after the border crop, got {y.shape[:2]}')
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def filt(img):
        return cv2.filter2D(img, -1, window)[5:-5, 5:-5]

    mu1, mu2 = filt(y), filt(y2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = filt(y**2) - mu1_sq
    sigma2_sq = filt(y2**2) - mu2_sq
    sigma12 = filt(y * y2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)) / ((mu1_sq + mu2_sq + _SSIM_C1) *
                                                                      (sigma1_sq + sigma2_sq + _SSIM_C2))
    return float(ssim_map.mean())


@METRIC_REGISTRY.register()
def psnr_y(img, img2, crop_border=0):
    """PSNR on Y of two uint8 BGR images; equals ``calculate_psnr(..., test_y_channel=True)``."""
    _check_same_shape(np.asarray(img), np.asarray(img2))
    return psnr_from_y(y_channel(img), y_channel(img2), crop_border)


@METRIC_REGISTRY.register()
def ssim_y(img, img2, crop_border=0):
    """SSIM on Y of two uint8 BGR images; equals ``calculate_ssim(..., test_y_channel=True)``."""
    _check_same_shape(np.asarray(img), np.asarray(img2))
    return ssim_from_y(y_channel(img), y_channel(img2), crop_border)


def optical_flow(prev_y, next_y, params=None):
    """Dense Farneback flow (H, W, 2) from ``prev_y`` to ``next_y`` (single-channel float images)."""
    p = dict(FARNEBACK_PARAMS, **(params or {}))
    return cv2.calcOpticalFlowFarneback(
        np.ascontiguousarray(prev_y, dtype=np.float32), np.ascontiguousarray(next_y, dtype=np.float32), None,
        p['pyr_scale'], p['levels'], p['winsize'], p['iterations'], p['poly_n'], p['poly_sigma'], p['flags'])


def tof_from_y(sr_ys, gt_ys, crop_border=0, params=None):
    """tOF of a clip from its Y frames (see the module docstring); NaN for a single-frame clip (no pair)."""
    if len(sr_ys) != len(gt_ys):
        raise ValueError(f'tOF needs as many SR frames as GT frames, got {len(sr_ys)} and {len(gt_ys)}')
    errors = []
    for t in range(1, len(sr_ys)):
        _check_same_shape(sr_ys[t], gt_ys[t], 'SR and GT frames')
        diff = optical_flow(sr_ys[t - 1], sr_ys[t], params) - optical_flow(gt_ys[t - 1], gt_ys[t], params)
        errors.append(float(np.mean(np.sqrt(np.sum(crop(diff, crop_border).astype(np.float64)**2, axis=-1)))))
    return float(np.mean(errors)) if errors else float('nan')


def tof(sr_frames, gt_frames, crop_border=0, params=None):
    """tOF of two clips given as lists of uint8 BGR frames."""
    return tof_from_y([y_channel(f) for f in sr_frames], [y_channel(f) for f in gt_frames], crop_border, params)


def clip_metrics(sr_frames, gt_frames, crop_border=0, metrics=METRIC_NAMES, flow_params=None):
    """Metrics of one clip: PSNR/SSIM averaged over its frames, tOF over its frame pairs.

    Args:
        sr_frames, gt_frames (list[ndarray]): uint8 HWC BGR frames in temporal order, same count and shapes.
        crop_border (int): Pixels dropped on each side before measuring.
        metrics (tuple[str]): Any of ``METRIC_NAMES``.

    Returns:
        dict: ``{name: clip value}`` plus ``'num_frames'`` and ``'per_frame': {'psnr': [...], 'ssim': [...]}``.
    """
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f'unknown metric(s) {unknown}; choose from {METRIC_NAMES}')
    if len(sr_frames) != len(gt_frames) or not sr_frames:
        raise ValueError(f'a clip needs the same non-zero number of SR and GT frames, got {len(sr_frames)} and '
                         f'{len(gt_frames)}')
    for t, (sr, gt) in enumerate(zip(sr_frames, gt_frames)):
        _check_same_shape(np.asarray(sr), np.asarray(gt), f'SR and GT frame {t}')
    sr_ys, gt_ys = [y_channel(f) for f in sr_frames], [y_channel(f) for f in gt_frames]
    result, per_frame = {}, {}
    for name, fn in (('psnr', psnr_from_y), ('ssim', ssim_from_y)):
        if name in metrics:
            per_frame[name] = [fn(s, g, crop_border) for s, g in zip(sr_ys, gt_ys)]
            result[name] = float(np.mean(per_frame[name]))
    if 'tof' in metrics:
        result['tof'] = tof_from_y(sr_ys, gt_ys, crop_border, flow_params)
    result['num_frames'] = len(sr_frames)
    result['per_frame'] = per_frame
    return result


def average_over_clips(per_clip, metrics=METRIC_NAMES):
    """Set-level value of each metric: the mean of the per-clip values (each clip counts once, whatever its
    length, as the VSR literature reports). Clips where a metric is undefined (NaN tOF of a 1-frame clip) are
    left out of that metric's mean; a metric no clip defines is NaN."""
    average = {}
    for name in metrics:
        values = [c[name] for c in per_clip.values() if name in c and not _is_nan(c[name])]
        if any(name in c for c in per_clip.values()):
            average[name] = float(np.mean(values)) if values else float('nan')
    return average


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)
