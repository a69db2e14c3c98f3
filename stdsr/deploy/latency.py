"""Milliseconds per output frame of a sliding-window student: PyTorch eager and onnxruntime, at a given thread count.

A sliding-window student makes one SR frame per forward of one window, so the time of a forward of a
``(1, T, 3, h, w)`` window is the time per frame. The median of a few runs after a warm-up is reported: the
machines this runs on are shared, and the median is the figure least moved by another process's burst.
"""
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from stdsr.deploy.sidecar import INPUT_NAME

DEPLOY_LR_SIZE = (180, 320)  # the Mobile AI 2021 real-time VSR setting: 180x320 LR, x4 to 720x1280


def median_ms(fn, repeats=3, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000. * (time.perf_counter() - start))
    return statistics.median(times)


@contextmanager
def torch_threads(threads):
    """Run with ``threads`` intra-op threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def window_input(window, size=DEPLOY_LR_SIZE, seed=0):
    return np.random.default_rng(seed).random((1, window, 3, *size), dtype=np.float32)


def torch_ms_per_frame(net, window, size=DEPLOY_LR_SIZE, threads=None, repeats=3, warmup=1):
    x = torch.from_numpy(window_input(window, size))
    with torch.no_grad(), torch_threads(threads):
        return median_ms(lambda: net(x), repeats, warmup)


def onnx_ms_per_frame(path_or_session, window, size=DEPLOY_LR_SIZE, threads=None, repeats=3, warmup=1):
    from stdsr.deploy.onnx_session import open_session
    session = open_session(path_or_session, threads) if isinstance(path_or_session, str) else path_or_session
    x = window_input(window, size)
    return median_ms(lambda: session.run(None, {INPUT_NAME: x}), repeats, warmup)
