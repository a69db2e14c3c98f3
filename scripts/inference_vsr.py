"""Super-resolve real footage: a folder of frames or a video file in, PNG frames or a video file out. No GT needed.

Frames are read lazily and processed in overlapping temporal chunks, so memory stays bounded whatever the
length: at most ``overlap + chunk + overlap`` LR frames (and their SR outputs) are held at once. Each chunk keeps
the outputs of its ``chunk`` central frames and drops those of its context frames, except at the true start and
end of the clip, where there is no context to drop. A sliding-window network needs ``window // 2`` context frames
(the default), and then the result equals whole-clip inference exactly; a recurrent network sees the whole past
and future, so ``--overlap`` trades memory and time for agreement with whole-clip inference.

Examples:
    python scripts/inference_vsr.py --opt options/train/STD/demo/train_EDVRS_STD_demo.yml \\
        --input datasets/demo/test/BIx4/chelsea_000 --output results/sr/chelsea_000
    python scripts/inference_vsr.py --ckpt net_g_latest.pth --arch-opt basicvsr.yml --overlap 10 \\
        --input clip_lr.mp4 --output clip_sr.mp4 --device cuda
"""
import argparse
import os
import sys
from os import path as osp

import cv2
import numpy as np
import torch
from tqdm import tqdm

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.data.clip_io import natural_key
from stdsr.utils.model_loading import ModelLoadError, add_model_arguments, models_from_args, resolve_device
from stdsr.utils.options import OptionError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v')
DEFAULT_RECURRENT_OVERLAP = 8


class InferenceInputError(ValueError):
    """Bad input or output path; the message names it."""


# ----------------------------------------------------------------------------------------------------------------------
# frame sources and sinks
# ----------------------------------------------------------------------------------------------------------------------
class FolderSource:
    """Image files of one folder in natural order (``f2`` before ``f10``), decoded one at a time."""

    def __init__(self, folder):
        files = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.')]
        if not files:
            raise InferenceInputError(f'input folder {folder} holds no image frames ({", ".join(IMAGE_EXTENSIONS)})')
        self.paths = [osp.join(folder, f) for f in sorted(files, key=natural_key)]
        self.names = [osp.splitext(osp.basename(p))[0] for p in self.paths]
        self.num_frames = len(self.paths)
        self.fps = None

    def __iter__(self):
        for path in self.paths:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise InferenceInputError(f'cannot decode frame {path}')
            yield img


class VideoSource:
    """Frames of a video file via OpenCV, decoded one at a time; the frame count is only a hint for the bar."""

    def __init__(self, path):
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise InferenceInputError(f'cannot open video {path} (not a video OpenCV can decode?)')
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        self.path, self.num_frames, self.names = path, (count if count > 0 else None), None

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        try:
            first = True
            while True:
                ok, frame = cap.read()
                if not ok:
                    if first:
                        raise InferenceInputError(f'video {self.path} has no decodable frame')
                    return
                first = False
                yield frame
        finally:
            cap.release()


def open_source(path):
    if not osp.exists(path):
        raise InferenceInputError(f'input {path} does not exist')
    return FolderSource(path) if osp.isdir(path) else VideoSource(path)


def is_video_path(path):
    return path.lower().endswith(VIDEO_EXTENSIONS)


class FolderSink:
    """PNG per frame: the input frame names for a folder input, ``00000000.png``... for a video."""

    def __init__(self, folder, names=None):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.names, self.count = folder, names, 0

    def write(self, frame):
        name = self.names[self.count] if self.names else f'{self.count:08d}'
        path = osp.join(self.folder, f'{name}.png')
        if not cv2.imwrite(path, frame):
            raise InferenceInputError(f'cannot write {path}')
        self.count += 1

    def close(self):
        pass

    def abort(self):
        pass  # frames written so far stay: they are complete files


class VideoSink:
    """mp4v (or the container's default) video at the input's frame rate; written to a temporary name and renamed
    at the end, so an interrupted run never leaves a truncated file under the requested name."""

    def __init__(self, path, fps):
        self.path, self.fps, self.writer, self.count = path, fps, None, 0
        stem, ext = osp.splitext(path)
        self.tmp_path = f'{stem}.partial{ext}'

    def write(self, frame):
        if self.writer is None:
            os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(self.tmp_path, cv2.VideoWriter_fourcc(*'mp4v'), self.fps, (w, h))
            if not self.writer.isOpened():
                raise InferenceInputError(f'cannot open a video writer for {self.path} (mp4v, {w}x{h}, {self.fps} fps)')
        self.writer.write(frame)
        self.count += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp_path, self.path)

    def abort(self):
        if self.writer is not None:
            self.writer.release()
            if osp.exists(self.tmp_path):
                os.remove(self.tmp_path)


# ----------------------------------------------------------------------------------------------------------------------
# chunked inference
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


# ----------------------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument('--input', required=True, help='folder of LR frames, or a video file')
    parser.add_argument('--output', required=True,
                        help=f'video file ({", ".join(VIDEO_EXTENSIONS)}) or a folder for PNG frames')
    parser.add_argument('--chunk', type=int, default=20, help='output frames per forward pass')
    parser.add_argument('--overlap', type=int,
                        help=f'context frames on each side of a chunk (default: window//2 for sliding networks, '
                        f'{DEFAULT_RECURRENT_OVERLAP} for recurrent ones)')
    parser.add_argument('--fps', type=float, help='frame rate of an output video (default: the input video\'s, or 25)')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.chunk < 1 or (args.overlap is not None and args.overlap < 0):
        parser.error('--chunk must be >= 1 and --overlap >= 0')
    return args


def check_output(path, overwrite):
    """An existing video, or a folder with images in it, is replaced only with --overwrite."""
    if is_video_path(path):
        if osp.exists(path) and not overwrite:
            raise InferenceInputError(f'output {path} exists; pass --overwrite to replace it')
        return
    if osp.exists(path) and not osp.isdir(path):
        raise InferenceInputError(f'output {path} exists and is not a folder (a video needs one of '
                                  f'{", ".join(VIDEO_EXTENSIONS)})')
    if osp.isdir(path) and not overwrite and any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)):
        raise InferenceInputError(f'output folder {path} already holds images; pass --overwrite to write over them')


def run(args):
    """Super-resolve ``args.input`` into ``args.output``; returns (frames written, SR frame size (h, w))."""
    source = open_source(args.input)
    if osp.realpath(args.input) == osp.realpath(args.output):
        raise InferenceInputError(f'output {args.output} is the input; choose another --output')
    check_output(args.output, args.overwrite)
    device = resolve_device(args.device)
    models = models_from_args(args, device)
    if len(models) != 1:
        raise ModelLoadError(f'inference takes exactly one model, got {len(models)}')
    model = models[0]
    overlap = default_overlap(model) if args.overlap is None else args.overlap
    if is_video_path(args.output):
        sink = VideoSink(args.output, args.fps or source.fps or 25.0)
    else:
        sink = FolderSink(args.output, source.names)
    bar = tqdm(total=source.num_frames, unit='frame', disable=args.no_progress, desc=model.label)
    size = None
    try:
        for frame in chunked_sr(model, source, args.chunk, overlap):
            img = to_uint8_bgr(frame)
            size = img.shape[:2]
            sink.write(img)
            bar.update(1)
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()
    sink.close()
    print(f'Wrote {sink.count} SR frame(s) of {size[1]}x{size[0]} to {args.output}')
    return sink.count, size


def main(argv=None):
    return run(parse_args(argv))


if __name__ == '__main__':
    try:
        main()
    except (InferenceInputError, ModelLoadError, OptionError) as error:
        sys.exit(f'inference_vsr: error: {error}')
