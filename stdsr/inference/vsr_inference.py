"""Chunked inference over a frame source: bounded memory whatever the length of the footage.

Frames are read lazily and processed in overlapping temporal chunks: at most ``overlap + chunk + overlap`` LR
frames (and their SR outputs) are held at once. Each chunk keeps the outputs of its ``chunk`` central frames and
drops those of its context frames, except at the true start and end of the clip, where there is no context to
drop. A sliding-window network needs ``window // 2`` context frames (the default), and then the result equals
whole-clip inference exactly; a recurrent network sees the whole past and future, so ``overlap`` trades memory
and time for agreement with whole-clip inference. ``scripts/inference_vsr.py`` (:mod:`stdsr.tools.inference_vsr`) is
the command line over it.
"""

import numpy as np
import torch

from stdsr.inference.frame_io import (FolderSink, InferenceInputError, VideoSink, check_output, is_video_path,
                                      open_source)
from stdsr.utils.frames import frames_to_clip

DEFAULT_RECURRENT_OVERLAP = 8


# ----------------------------------------------------------------------------------------------------------------------
def default_overlap(model):
    return model.window // 2 if model.mode == 'sliding' else DEFAULT_RECURRENT_OVERLAP


def chunked_sr(model, frames, chunk, overlap, windows_per_forward=8):
    """Yield the SR frame of every LR frame of the iterable ``frames`` in order, as (3, H, W) float CPU tensors.

    Each forward sees the output frames [s, e) of one chunk plus up to ``overlap`` real frames on either side;
    the outputs of those context frames are dropped. Only ``2 * overlap + chunk`` LR frames are held at a time.
    """
    if chunk < 1 or overlap < 0:
        raise ValueError(f'chunk must be >= 1 and overlap >= 0, got chunk={chunk}, overlap={overlap}')
    iterator = iter(frames)
    buffer, buf_start = [], 0  # buffer holds LR frames buf_start .. buf_start + len(buffer) - 1
    next_out, exhausted, size = 0, False, None
    while True:
        while not exhausted and buf_start + len(buffer) < next_out + chunk + overlap:
            try:
                frame = next(iterator)
            except StopIteration:
                exhausted = True
                break
            if size is None:
                size = frame.shape
            elif frame.shape != size:
                raise InferenceInputError(f'frame {buf_start + len(buffer)} is {frame.shape[1]}x{frame.shape[0]} but '
                                          f'frame 0 is {size[1]}x{size[0]}; all frames must share one size')
            buffer.append(frame)
        buf_end = buf_start + len(buffer)
        if next_out >= buf_end:
            return
        out_end = min(next_out + chunk, buf_end)
        in_start, in_end = max(buf_start, next_out - overlap), min(buf_end, out_end + overlap)
        lq = frames_to_clip(buffer[in_start - buf_start:in_end - buf_start])
        sr = model.infer(lq, chunk=windows_per_forward)[0].float().cpu()
        for t in range(next_out, out_end):
            yield sr[t - in_start]
        next_out = out_end
        drop = max(0, next_out - overlap - buf_start)
        buffer, buf_start = buffer[drop:], buf_start + drop


def to_uint8_bgr(frame):
    """(3, H, W) RGB float in [0, 1] -> HWC uint8 BGR, rounded like BasicSR's tensor2img."""
    arr = frame.clamp(0, 1).numpy().transpose(1, 2, 0)[..., ::-1]
    return np.ascontiguousarray((arr * 255.0).round().astype(np.uint8))
