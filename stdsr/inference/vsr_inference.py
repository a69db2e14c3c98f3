"""Chunked inference over a frame source: bounded memory whatever the length of the footage.

Frames are read lazily and processed in overlapping temporal chunks: at most ``overlap + chunk + overlap`` LR
frames (and their SR outputs) are held at once. Each chunk keeps the outputs of its ``chunk`` central frames and
drops those of its context frames, except at the true start and end of the clip, where there is no context to
drop. A sliding-window network needs ``window // 2`` context frames (the default), and then the result equals
whole-clip inference exactly; a recurrent network sees the whole past and future, so ``overlap`` trades memory
and time for agreement with whole-clip inference. ``scripts/inference_vsr.py`` is the command line over
:func:`run`.
"""
import itertools
import sys
from os import path as osp

import numpy as np
import torch
from tqdm import tqdm

from stdsr.inference.frame_io import (FolderSink, InferenceInputError, VideoSink, check_output, is_video_path,
                                      open_source)
from stdsr.utils.model_loading import ModelLoadError, models_from_args, resolve_device

DEFAULT_RECURRENT_OVERLAP = 8


# ----------------------------------------------------------------------------------------------------------------------
def frames_to_clip(frames):
    """HWC uint8 BGR frames -> (1, N, 3, h, w) float RGB tensor in [0, 1]."""
    arr = np.stack([f[..., ::-1] for f in frames]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.)[None]


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


def load_model(args):
    """The one network of the command line: an exported ``--onnx`` model (onnxruntime, no PyTorch network; any
    ``--opt`` is checked against it) or a PyTorch model; both answer ``infer`` the same way."""
    if getattr(args, 'onnx', None):
        from stdsr.deploy.onnx_session import onnx_model_from_args
        return onnx_model_from_args(args)
    models = models_from_args(args, resolve_device(args.device))
    if len(models) != 1:
        raise ModelLoadError(f'inference takes exactly one model, got {len(models)}')
    return models[0]


def run(args):
    """Super-resolve ``args.input`` into ``args.output``; returns (frames written, SR frame size (h, w))."""
    source = open_source(args.input)
    if osp.realpath(args.input) == osp.realpath(args.output):
        raise InferenceInputError(f'output {args.output} is the input; choose another --output')
    check_output(args.output, args.overwrite)  # before the model is loaded and any frame is computed
    model = load_model(args)
    overlap = default_overlap(model) if args.overlap is None else args.overlap
    if is_video_path(args.output):
        sink = VideoSink(args.output, args.fps or source.fps or 25.0)
    else:
        sink = FolderSink(args.output, source.names)
    max_frames = getattr(args, 'max_frames', None)
    frames = itertools.islice(source, max_frames) if max_frames else source
    total = min(filter(None, (source.num_frames, max_frames)), default=None)
    bar = tqdm(total=total, unit='frame', disable=args.no_progress, desc=model.label)
    size = None
    try:
        for frame in chunked_sr(model, frames, args.chunk, overlap):
            img = to_uint8_bgr(frame)
            size = img.shape[:2]
            sink.write(img)
            bar.update(1)
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()
    if sink.count == 0:
        raise InferenceInputError(f'input {args.input}: no frame could be read')
    sink.close()
    early = source.ended_early() if not max_frames or sink.count < max_frames else None
    if early:
        print(f'warning: {early}; wrote the {sink.count} frame(s) read', file=sys.stderr, flush=True)
    print(f'Wrote {sink.count} SR frame(s) of {size[1]}x{size[0]} to {args.output}')
    return sink.count, size


