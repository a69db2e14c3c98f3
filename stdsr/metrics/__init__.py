"""Metrics of video super-resolution: PSNR/SSIM on Y, tOF, and clip-then-set averaging."""
