"""LR degradations of the VSR benchmarks: BI (MATLAB bicubic) and BD (Gaussian blur + decimation).

Both take a uint8 HR image (HWC or HW, channel order irrelevant) and return uint8. The HR image is
mod-cropped to a multiple of ``scale`` first (bottom/right rows and columns dropped), so the LR size is
always ``(h // scale, w // scale)``; evaluation must mod-crop its GT the same way (see ``mod_crop``).
"""
import cv2
import numpy as np

from basicsr.utils.matlab_functions import imresize

SCALES = (2, 3, 4)
MODES = ('BI', 'BD')


def check_scale(scale):
    """Reject scales the benchmarks do not define, before any work is done."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale not in SCALES:
        raise ValueError(f'scale must be one of {SCALES}, got {scale!r}.')
    return int(scale)


def check_mode(mode):
    """Accept 'BI'/'BD' in any case, since configs and file names spell them both ways."""
    if not isinstance(mode, str) or mode.upper() not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}.')
    return mode.upper()


def mod_crop(img, scale):
    """Drop bottom/right pixels so both sides divide by ``scale`` (the convention of all VSR benchmarks)."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale, ...]


def _check_image(img):
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError('img must be a uint8 numpy array of shape (h, w) or (h, w, c), '
                         f'got {getattr(img, "dtype", type(img))} {getattr(img, "shape", "")}.')


def _to_uint8(img):
    """MATLAB's uint8 cast: clip, then round half away from zero (np.round would round half to even)."""
    return np.floor(np.clip(img, 0, 255) + 0.5).astype(np.uint8)


def bi_downsample(img, scale):
    """BI degradation: MATLAB ``imresize(img, 1/scale, 'bicubic')`` with antialiasing.

    BasicSR's ``imresize`` reproduces MATLAB's kernel and symmetric borders in float; only the final
    uint8 rounding is added here.
    """
    scale = check_scale(scale)
    _check_image(img)
    img = mod_crop(img, scale)
    out = imresize(img.astype(np.float32), 1 / scale, antialiasing=True)
    return _to_uint8(out)


def gaussian_kernel_1d(kernel_size=13, sigma=1.6):
    """Normalised sampled Gaussian; its outer product equals the 2D kernel of DUF's official code."""
    x = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2
    kernel = np.exp(-0.5 * (x / sigma)**2)
    return kernel / kernel.sum()


def bd_downsample(img, scale, sigma=1.6, kernel_size=13):
    """BD degradation (DUF/TOFlow protocol): Gaussian blur, then keep pixels ``0, scale, 2*scale, ...``.

    Borders are mirrored without repeating the edge pixel (cv2 REFLECT_101 == torch 'reflect'), and the
    sampling phase is pixel 0, both as in ``basicsr.data.data_util.duf_downsample``; unlike that function
    ``sigma`` does not follow the scale (the benchmarks use 1.6 for every scale).
    """
    scale = check_scale(scale)
    _check_image(img)
    img = mod_crop(img, scale)
    kernel = gaussian_kernel_1d(kernel_size, sigma)
    blurred = cv2.sepFilter2D(img.astype(np.float64), -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    blurred = blurred.reshape(img.shape)  # cv2 drops a trailing channel axis of length 1
    return _to_uint8(blurred[::scale, ::scale, ...])


def downsample(img, scale, mode='BI'):
    """Dispatch on the degradation name used in data set folder names (``BIx4``, ``BDx4``)."""
    mode = check_mode(mode)
    return bi_downsample(img, scale) if mode == 'BI' else bd_downsample(img, scale)
