"""INT8 of an exported student: onnxruntime static quantization (QDQ), calibrated on training clips.

Static quantization fixes every activation's int8 range from calibration data, so the data must look like what
the student will see: windows of LR training frames (never test clips). Only convolutions are quantized
(weights per output channel, activations per tensor): they are nearly all of the arithmetic, while the flow
warp (GridSample), the bicubic base (Resize) and a deformable convolution stay in float, where 8 bits would move
sampling positions rather than just round values.

A student "does not quantize" when its graph has no convolution to quantize, when onnxruntime's quantizer
fails on it, or when the INT8 output drifts from the fp32 output by more than ``min_psnr`` on held-out training
windows; each is refused with its reason and nothing is written.
"""
import copy
import os
from os import path as osp

import numpy as np

from stdsr.errors import QuantizationRefused  # noqa: F401  (raised here; imported from here too)
from stdsr.deploy.onnx_export import format_db, json_db, psnr_between
from stdsr.deploy.onnx_session import OnnxStudent, open_session
from stdsr.deploy.sidecar import INPUT_NAME, check_output_path, publish_with_sidecar
from stdsr.utils.atomic_files import partial_path, remove_path

QUANTIZED_OPS = ('Conv', )
CALIB_CROP = (64, 64)
CALIB_WINDOWS = 16
CHECK_WINDOWS = 4
MIN_PSNR_VS_FP32 = 30.0  # dB between INT8 and fp32 outputs: below it the INT8 model is a different model


def training_windows(lq_root, window, count, crop=CALIB_CROP, seed=0, multiple=1):
    """``count`` windows (1, T, 3, ch, cw) float32 cropped at random from the LR clips under ``lq_root``."""
    import cv2

    from stdsr.data.clip_io import DataError, list_clip_tree
    try:
        clips = list_clip_tree(lq_root, 'disk')
    except DataError as err:
        raise QuantizationRefused(f'calibration clips: {err}') from None
    clips = {c: f for c, f in clips.items() if len(f) >= window}
    if not clips:
        raise QuantizationRefused(f'calibration clips: no clip under {lq_root} has {window} frames')
    rng = np.random.default_rng(seed)
    names = sorted(clips)
    out = []
    for _ in range(count):
        clip = names[rng.integers(len(names))]
        start = int(rng.integers(len(clips[clip]) - window + 1))
        frames = [cv2.imread(osp.join(lq_root, clip, f'{stem}.png'))[..., ::-1] for stem in
                  clips[clip][start:start + window]]
        h, w = frames[0].shape[:2]
        ch, cw = min(crop[0], h), min(crop[1], w)
        ch, cw = ch - ch % multiple, cw - cw % multiple
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        arr = np.stack([f[y:y + ch, x:x + cw] for f in frames]).transpose(0, 3, 1, 2)[None]
        out.append(np.ascontiguousarray(arr, dtype=np.float32) / 255.)
    return out


def calibration_reader(windows):
    from onnxruntime.quantization import CalibrationDataReader

    class WindowReader(CalibrationDataReader):
        """Feeds the calibration windows one at a time (what quantize_static asks of a reader)."""

        def __init__(self):
            self.items = iter(windows)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {INPUT_NAME: item}

        def rewind(self):
            self.items = iter(windows)

    return WindowReader()


def quantizable_nodes(path):
    import onnx
    return [n.name for n in onnx.load(path, load_external_data=False).graph.node if n.op_type in QUANTIZED_OPS]


def quantize_student(fp32_path, output, calib_root, num_windows=CALIB_WINDOWS, crop=CALIB_CROP,
                     min_psnr=MIN_PSNR_VS_FP32, overwrite=False, log=print):
    """INT8 (QDQ) copy of the exported fp32 student ``fp32_path`` at ``output``; returns its sidecar dict."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    check_output_path(output, overwrite)
    fp32 = OnnxStudent(fp32_path)
    if fp32.meta.get('precision', 'fp32') != 'fp32':
        raise QuantizationRefused(f'{fp32_path} is already {fp32.meta["precision"]}; quantize the fp32 export')
    label = fp32.label
    if not quantizable_nodes(fp32_path):
        raise QuantizationRefused(f"'{label}' does not quantize: its graph ({fp32_path}) has no "
                                  f"{'/'.join(QUANTIZED_OPS)} node, so static INT8 would change nothing; "
                                  'nothing written')
    calib = training_windows(calib_root, fp32.window, num_windows, crop, seed=0, multiple=fp32.size_multiple)
    check = training_windows(calib_root, fp32.window, CHECK_WINDOWS, crop, seed=1, multiple=fp32.size_multiple)
    os.makedirs(osp.dirname(osp.abspath(output)), exist_ok=True)
    tmp = partial_path(output)
    remove_path(tmp)
    try:
        try:
            quantize_static(fp32_path, tmp, calibration_reader(calib), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise QuantizationRefused(f"'{label}' does not quantize: onnxruntime's quantize_static failed "
                                      f'({reason[:300]}); nothing written') from None
        session = open_session(tmp, what=f"the INT8 model of '{label}'")
        psnrs, diffs = [], []
        for clip in check:
            ref = fp32.run_windows(clip)
            out = session.run(None, {INPUT_NAME: clip})[0]
            psnrs.append(psnr_between(out, ref))
            diffs.append(float(np.abs(out - ref).max()))
        psnr = float(np.mean(psnrs))
        log(f"INT8 '{label}': {len(quantizable_nodes(fp32_path))} Conv quantized, calibrated on {len(calib)} windows "
            f'of {calib_root}; PSNR(int8, fp32) = {format_db(psnr)} dB on {len(check)} other training windows')
        if psnr < min_psnr:
            raise QuantizationRefused(f"'{label}' does not quantize: INT8 output is {format_db(psnr)} dB from fp32 "
                                      f'(limit {min_psnr:g} dB) on held-out training windows; nothing written')
        meta = copy.deepcopy(fp32.meta)
        meta['precision'] = 'int8'
        meta['fp32_parity'] = meta.pop('parity')
        meta['quantization'] = {
            'method': 'onnxruntime quantize_static, QDQ, MinMax', 'ops': list(QUANTIZED_OPS),
            'weights': 'int8 per channel', 'activations': 'uint8 per tensor', 'fp32_model': osp.basename(fp32_path),
            'calibration': {'root': str(calib_root), 'windows': len(calib), 'crop': list(crop)}}
        meta['parity'] = {'reference': 'onnxruntime fp32', 'frames': f'{len(check)} held-out windows of {calib_root}',
                          'psnr_db': json_db(psnr), 'max_abs_diff': max(diffs), 'limits': {'min_psnr_db': min_psnr}}
        publish_with_sidecar(tmp, output, meta)
    except BaseException:
        remove_path(tmp)
        raise
    return meta
