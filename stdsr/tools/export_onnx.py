"""``scripts/export_onnx.py``: export a trained student to ONNX, checked against PyTorch, with its ms/frame.

Takes the model arguments of the other scripts (``--opt FILE.yml`` or ``--ckpt FILE.pth --arch-opt FILE.yml``).
The export is run in onnxruntime on real frames next to the PyTorch student and written only if the two agree
(:mod:`stdsr.deploy.onnx_export`); then one forward at the deployment size (180x320 LR) is timed in both.
"""
import argparse

import torch

from stdsr.deploy.latency import DEPLOY_LR_SIZE, onnx_ms_per_frame, torch_ms_per_frame
from stdsr.deploy.onnx_export import PARITY_SIZE, ExportError, export_student, format_db


def parse_size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 180x320), got '{text}'") from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f'sizes must be at least 8x8, got {text}')
    return h, w


def parse_args(argv=None):
    from stdsr.inference.model_loading import add_model_arguments
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(': ', 1)[-1])
    add_model_arguments(parser)
    parser.add_argument('--output', required=True, metavar='FILE.onnx', help='the ONNX model (sidecar: FILE.onnx.json)')
    parser.add_argument('--opset', type=int, help='ONNX opset (default 17; 19 for deformable convolutions)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing model and sidecar')
    parser.add_argument('--parity-frames', metavar='DIR',
                        help='folder of LR frames for the parity check (default: a scikit-image photo, moving)')
    parser.add_argument('--parity-size', type=parse_size, default=PARITY_SIZE, metavar='HxW',
                        help=f'LR size of the parity frames (default {PARITY_SIZE[0]}x{PARITY_SIZE[1]})')
    parser.add_argument('--time-size', type=parse_size, default=DEPLOY_LR_SIZE, metavar='HxW',
                        help=f'LR size of the ms/frame line (default {DEPLOY_LR_SIZE[0]}x{DEPLOY_LR_SIZE[1]})')
    parser.add_argument('--repeats', type=int, default=3, help='timed forwards per runtime (median; 0: no timing)')
    parser.add_argument('--threads', type=int, help='threads of both runtimes for the timing (default: all)')
    return parser.parse_args(argv)


def main(argv=None):
    import stdsr  # noqa: F401  (registers the archs)
    from stdsr.deploy.sidecar import check_output_path
    from stdsr.inference.model_loading import models_from_args
    args = parse_args(argv)
    check_output_path(args.output, args.overwrite)  # before any model is loaded
    models = models_from_args(args, torch.device('cpu'))
    if len(models) != 1:
        raise ExportError(f'export takes exactly one model, got {len(models)}')
    model = models[0]
    meta = export_student(model, args.output, args.opset, args.overwrite, args.parity_frames, args.parity_size)
    parity = meta['parity']
    print(f"Wrote {args.output} ({meta['label']}, x{meta['scale']}, window {meta['window']}, opset {meta['opset']}); "
          f"parity max|diff| {parity['max_abs_diff']:.2e}, PSNR {format_db(parity['psnr_db'])} dB")
    if args.repeats > 0:
        h, w = args.time_size
        ms_torch = torch_ms_per_frame(model.net, model.window, args.time_size, args.threads, args.repeats)
        ms_onnx = onnx_ms_per_frame(args.output, model.window, args.time_size, args.threads, args.repeats)
        print(f"ms/frame at {h}x{w} LR -> {h * meta['scale']}x{w * meta['scale']} "
              f"({args.threads or 'all'} thread(s), median of {args.repeats}): PyTorch {ms_torch:.1f}, "
              f'onnxruntime {ms_onnx:.1f} ({ms_torch / ms_onnx:.2f}x)')
    return 0
