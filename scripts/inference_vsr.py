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
import sys

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.inference.frame_io import VIDEO_EXTENSIONS
from stdsr.inference.vsr_inference import DEFAULT_RECURRENT_OVERLAP, run
from stdsr.utils.cli import run_cli
from stdsr.utils.model_loading import add_model_arguments


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


if __name__ == '__main__':
    sys.exit(run_cli('inference_vsr', main))
