"""``scripts/quantize_onnx.py``: INT8 copy of an exported student, calibrated on LR training clips.

The command line over :func:`stdsr.deploy.int8.quantize_student`: static QDQ quantization of the convolutions,
checked against the fp32 model on held-out training windows; a student that does not quantize is refused.
"""
import argparse

from stdsr.deploy.int8 import CALIB_CROP, CALIB_WINDOWS, MIN_PSNR_VS_FP32, quantize_student
from stdsr.deploy.onnx_export import format_db


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(': ', 1)[-1])
    parser.add_argument('--model', required=True, metavar='FILE.onnx', help='fp32 model from scripts/export_onnx.py')
    parser.add_argument('--output', required=True, metavar='FILE.onnx', help='the INT8 model')
    parser.add_argument('--calib-lq', default='datasets/demo/train/BIx4', metavar='DIR',
                        help='LR training clips, <DIR>/<clip>/<frame>.png (default: the demo training clips)')
    parser.add_argument('--calib-windows', type=int, default=CALIB_WINDOWS, help='calibration windows')
    parser.add_argument('--min-psnr', type=float, default=MIN_PSNR_VS_FP32,
                        help='refuse when PSNR(int8, fp32) on held-out training windows is lower (dB)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing model and sidecar')
    args = parser.parse_args(argv)
    if args.calib_windows < 1:
        parser.error('--calib-windows must be >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    meta = quantize_student(args.model, args.output, args.calib_lq, args.calib_windows, CALIB_CROP, args.min_psnr,
                            args.overwrite)
    print(f"Wrote {args.output} (INT8 of {meta['label']}); PSNR(int8, fp32) {format_db(meta['parity']['psnr_db'])} dB")
    return 0
