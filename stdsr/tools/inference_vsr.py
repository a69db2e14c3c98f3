"""Super-resolve real footage: a folder of frames or a video file in, PNG frames or a video file out. No GT needed.

The command line over :mod:`stdsr.inference` (chunked, bounded-memory inference; see its docstring for
``--chunk`` and ``--overlap``). Only folders of images and video files (.mp4, .avi, .mov, .mkv, .m4v) whose
first frame decodes are accepted; a video that ends before its header's frame count says how many it read.

Examples:
    python scripts/inference_vsr.py --opt options/train/STD/demo/train_VESPCNS_STD_demo.yml \\
        --input datasets/demo/test/BIx4/chelsea_000 --output results/sr/chelsea_000
    python scripts/inference_vsr.py --onnx results/demo/onnx/std_student.onnx \\
        --input datasets/demo/test/BIx4/chelsea_000 --output results/sr_onnx/chelsea_000
    python scripts/inference_vsr.py --ckpt net_g_latest.pth --arch-opt basicvsr.yml --overlap 10 \\
        --input clip_lr.mp4 --output clip_sr.mp4 --device cuda
"""
import argparse
import itertools
import sys

from tqdm import tqdm

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.inference.frame_io import VIDEO_EXTENSIONS
from stdsr.errors import InferenceInputError, ModelLoadError
from stdsr.inference.frame_io import FolderSink, VideoSink, check_output, is_video_path, open_source
from stdsr.inference.vsr_inference import DEFAULT_RECURRENT_OVERLAP, chunked_sr, default_overlap, to_uint8_bgr
from stdsr.runtime.device import resolve_device
from stdsr.utils.cli import run_cli
from stdsr.inference.model_loading import add_model_arguments, models_from_args


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
    check_output(args.output, args.overwrite, args.input)  # before the model is loaded and any frame is computed
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument('--onnx', metavar='FILE.onnx',
                        help='run a model exported by scripts/export_onnx.py in onnxruntime instead of PyTorch '
                        '(--opt/--arch-opt, if given, are checked against it)')
    parser.add_argument('--threads', type=int, help='onnxruntime intra-op threads (default: all cores)')
    parser.add_argument('--input', required=True, help='folder of LR frames, or a video file')
    parser.add_argument('--output', required=True,
                        help=f'video file ({", ".join(VIDEO_EXTENSIONS)}) or a folder for PNG frames')
    parser.add_argument('--chunk', type=int, default=20, help='output frames per forward pass')
    parser.add_argument('--overlap', type=int,
                        help=f'context frames on each side of a chunk (default: window//2 for sliding networks, '
                        f'{DEFAULT_RECURRENT_OVERLAP} for recurrent ones)')
    parser.add_argument('--max-frames', type=int, help='super-resolve only the first frames of the input')
    parser.add_argument('--fps', type=float, help='frame rate of an output video (default: the input video\'s, or 25)')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.chunk < 1 or (args.overlap is not None and args.overlap < 0) or (args.max_frames or 1) < 1:
        parser.error('--chunk and --max-frames must be >= 1 and --overlap >= 0')
    return args


def main(argv=None):
    return run(parse_args(argv))
