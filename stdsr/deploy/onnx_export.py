"""Export a sliding-window student to ONNX, checked against PyTorch in onnxruntime before the file is published.

The exported graph maps one window ``(n, T, 3, h, w)`` RGB in [0, 1] to the SR centre frame ``(n, 3, s*h, s*w)``
with the batch, height and width dynamic, so the same file serves any frame size (and the batched windows of
chunked inference). The file is written under a temporary name, run in onnxruntime on real frames next to the
PyTorch student, and renamed only when the two agree; a JSON sidecar ``FILE.onnx.json`` beside it records the
student's options, scale, window, opset and the parity figures, so inference never has to guess them.

What is refused, in one line each: recurrent networks (BasicVSR-style networks are bidirectional, so an output
frame depends on every later frame and there is no step with a bounded state to export), and deformable
convolution below opset 19 (torchvision's ``deform_conv2d`` has no ONNX symbolic of its own; we map it to ONNX
``DeformConv``, which exists from opset 19 and which onnxruntime runs on the CPU).
"""
import math
import os
import warnings
from contextlib import contextmanager
from os import path as osp

import cv2
import numpy as np
import torch

from stdsr.errors import ExportError  # noqa: F401  (raised here; imported from here too)
from stdsr.deploy.onnx_session import open_session
from stdsr.deploy.sidecar import INPUT_NAME, OUTPUT_NAME, SIDECAR_FORMAT, check_output_path, publish_with_sidecar
from stdsr.utils.atomic_files import partial_path, remove_path
from stdsr.utils.cli import UserInputError

DEFAULT_OPSET = 17
DEFORM_OPSET = 19  # ONNX DeformConv
# A trace at a size that is no multiple of 4 keeps the size-dependent branches (VESPCN's padding) in the graph;
# networks that insist on multiples of 4 (EDVR's pyramid) are traced at the second size.
TRACE_SIZES = ((30, 34), (32, 36))
PARITY_SIZE = (58, 86)  # LR side of the parity frames: unlike both trace sizes, so dynamic shapes are exercised
PARITY_MAX_ABS = 1e-3  # on outputs in [0, 1]: far below one 8-bit level (1/255)
PARITY_MIN_PSNR = 60.0
PARITY_PHOTO = 'astronaut'


def psnr_between(a, b):
    """PSNR (dB) of two float arrays in [0, 1]; inf when they are equal."""
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1).astype(np.float64))**2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def format_db(value):
    return 'inf' if value is None or math.isinf(value) else f'{value:.2f}'


def json_db(value):
    """JSON has no inf: identical outputs are stored as null."""
    return None if value is None or math.isinf(value) else float(value)


# ----------------------------------------------------------------------------------------------------------------------
# what can be exported
# ----------------------------------------------------------------------------------------------------------------------
def deform_conv_modules(net):
    """Modules of ``net`` that run a deformable convolution (BasicSR's DCNv2Pack and its relatives)."""
    return [name for name, m in net.named_modules() if any('DeformConv' in c.__name__ for c in type(m).__mro__)]


def default_opset(net):
    return DEFORM_OPSET if deform_conv_modules(net) else DEFAULT_OPSET


def check_exportable(model, opset):
    """Raise a one-line ExportError for what is not exported; returns None when ``model`` can be."""
    kind = model.net_opt.get('type', type(model.net).__name__)
    if model.is_bicubic:
        raise ExportError(f"model '{model.label}' is the bicubic baseline, not a network; there is nothing to export")
    if model.mode != 'sliding':
        raise ExportError(f"model '{model.label}' ({kind}) is recurrent: only sliding-window students are exported "
                          '(a BasicVSR-style network is bidirectional, every output frame depends on all later frames, '
                          'so it has no step with a bounded state to export)')
    deform = deform_conv_modules(model.net)
    if deform and opset < DEFORM_OPSET:
        raise ExportError(f"model '{model.label}' ({kind}): operator torchvision::deform_conv2d (in {deform[0]}) "
                          f'maps to ONNX DeformConv, which needs --opset {DEFORM_OPSET} or later, got {opset}')


@contextmanager
def deform_conv_symbolic(opset):
    """Map ``torchvision::deform_conv2d`` to ONNX ``DeformConv`` while an export runs (same offset/mask layout)."""
    from torch.onnx import symbolic_helper as sym

    @sym.parse_args('v', 'v', 'v', 'v', 'v', 'i', 'i', 'i', 'i', 'i', 'i', 'i', 'i', 'b')
    def deform_conv2d(g, x, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups,
                      offset_groups, use_mask):
        kernel = sym._get_tensor_sizes(weight)[2:]
        inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
        return g.op('DeformConv', *inputs, dilations_i=[dil_h, dil_w], group_i=groups, kernel_shape_i=kernel,
                    offset_group_i=offset_groups, pads_i=[pad_h, pad_w, pad_h, pad_w], strides_i=[stride_h, stride_w])

    registered = opset >= DEFORM_OPSET
    if registered:
        torch.onnx.register_custom_op_symbolic('torchvision::deform_conv2d', deform_conv2d, opset)
    try:
        yield
    finally:
        if registered:
            torch.onnx.unregister_custom_op_symbolic('torchvision::deform_conv2d', opset)


# ----------------------------------------------------------------------------------------------------------------------
# parity frames
# ----------------------------------------------------------------------------------------------------------------------
def round_size(size, multiple):
    h, w = size
    return h - h % multiple, w - w % multiple


def photo_window(window, size):
    """``window`` LR frames of a scikit-image photo (bundled, no download), the view moving one pixel per frame."""
    from stdsr.data.preparation.demo_clips import load_photo
    photo = load_photo(PARITY_PHOTO)  # RGB uint8
    h, w = size
    scale = max(1.0, min(photo.shape[0] / (h + 2 * window), photo.shape[1] / (w + 2 * window)) / 1.5)
    small = cv2.resize(photo, (int(photo.shape[1] / scale), int(photo.shape[0] / scale)), interpolation=cv2.INTER_AREA)
    if small.shape[0] < h + window or small.shape[1] < w + window:
        raise ExportError(f'parity size {h}x{w} is larger than the parity photo allows')
    frames = [small[t:t + h, t:t + w] for t in range(window)]
    return np.stack(frames).transpose(0, 3, 1, 2)[None].astype(np.float32) / 255., f'scikit-image {PARITY_PHOTO}'


def folder_window(folder, window, size):
    """The first ``window`` frames of a folder of LR images, cropped to ``size`` from the top left."""
    from stdsr.inference.frame_io import open_source
    source = open_source(folder)
    frames = []
    for frame in source:
        frames.append(frame[..., ::-1])  # BGR -> RGB
        if len(frames) == window:
            break
    if len(frames) < window:
        raise ExportError(f'--parity-frames {folder}: {len(frames)} frame(s), the student needs a window of {window}')
    h, w = min(size[0], frames[0].shape[0]), min(size[1], frames[0].shape[1])
    clip = np.stack([f[:h, :w] for f in frames]).transpose(0, 3, 1, 2)[None]
    return np.ascontiguousarray(clip).astype(np.float32) / 255., f'{folder} (first {window} frames, {h}x{w})'


def parity_window(window, size=PARITY_SIZE, frames=None, multiple=1):
    """(1, T, 3, h, w) float32 real frames for the parity check, and where they come from."""
    size = round_size(size, multiple)
    clip, origin = folder_window(frames, window, size) if frames else photo_window(window, size)
    h, w = round_size(clip.shape[-2:], multiple)
    return np.ascontiguousarray(clip[..., :h, :w]), origin


# ----------------------------------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------------------------------
def trace_size(model):
    """The first of TRACE_SIZES the PyTorch student accepts, and the multiple that frame sizes must keep."""
    errors = []
    for size in TRACE_SIZES:
        try:
            with torch.no_grad():
                model.net(torch.rand(1, model.window, 3, *size, device=model.device))
            return size, (1 if size is TRACE_SIZES[0] else 4)
        except Exception as err:  # a network that refuses a size says so with an assertion or a shape error
            errors.append(f'{size[0]}x{size[1]}: {str(err).strip().splitlines()[0] if str(err).strip() else err!r}')
    raise ExportError(f"model '{model.label}' runs at none of the trace sizes ({'; '.join(errors)})")


def torch_export(net, window, size, path, opset):
    """The TorchScript-based exporter (the dynamo one needs onnxscript, and gives the same graph here)."""
    dummy = torch.rand(1, window, 3, *size)
    dynamic = {INPUT_NAME: {0: 'batch', 3: 'height', 4: 'width'}, OUTPUT_NAME: {0: 'batch', 2: 'out_height',
                                                                                    3: 'out_width'}}
    with warnings.catch_warnings(), deform_conv_symbolic(opset):
        warnings.simplefilter('ignore')  # tracer warnings about shape arithmetic: the parity check is the judge
        torch.onnx.export(net, (dummy, ), path, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=dynamic, do_constant_folding=True)


def parity(net, session, clip):
    """max|ONNX - PyTorch| and the PSNR between the two outputs on ``clip`` (1, T, 3, h, w)."""
    with torch.no_grad():
        ref = net(torch.from_numpy(clip)).float().numpy()
    out = session.run(None, {INPUT_NAME: clip})[0]
    if out.shape != ref.shape:
        raise ExportError(f'onnxruntime output {out.shape} differs from PyTorch output {ref.shape}')
    return float(np.abs(out - ref).max()), psnr_between(out, ref), ref.shape


def export_student(model, output, opset=None, overwrite=False, parity_frames=None, parity_size=PARITY_SIZE,
                   max_abs=PARITY_MAX_ABS, min_psnr=PARITY_MIN_PSNR, log=print):
    """Export ``model`` (a :class:`stdsr.inference.model_loading.LoadedModel`) to ``output``; returns the sidecar dict.

    Nothing appears at ``output`` unless the ONNX model agrees with PyTorch on real frames (``max_abs``,
    ``min_psnr``); an existing file is replaced only with ``overwrite``.
    """
    import onnx

    check_output_path(output, overwrite)
    opset = opset or default_opset(model.net)
    check_exportable(model, opset)
    net = model.net.cpu().eval()
    model.device = torch.device('cpu')
    size, multiple = trace_size(model)
    clip, origin = parity_window(model.window, parity_size, parity_frames, multiple)
    os.makedirs(osp.dirname(osp.abspath(output)), exist_ok=True)
    tmp = partial_path(output)
    remove_path(tmp)
    try:
        try:
            torch_export(net, model.window, size, tmp, opset)
        except torch.onnx.errors.UnsupportedOperatorError as err:
            raise ExportError(f"model '{model.label}': {str(err).splitlines()[0]}") from None
        onnx.checker.check_model(tmp)
        session = open_session(tmp, what=f"the export of '{model.label}'")
        diff, psnr, out_shape = parity(net, session, clip)
        log(f"parity of '{model.label}' on {origin}, LR {clip.shape[-2]}x{clip.shape[-1]}: max|onnx - torch| = "
            f'{diff:.2e}, PSNR(onnx, torch) = {format_db(psnr)} dB')
        if not (diff <= max_abs and psnr >= min_psnr):
            raise ExportError(f"model '{model.label}' fails parity: max|onnx - torch| = {diff:.2e} (limit "
                              f'{max_abs:.0e}), PSNR {format_db(psnr)} dB (limit {min_psnr:g}); nothing written')
        scale = out_shape[-1] // clip.shape[-1]
        meta = sidecar(model, opset, scale, multiple, origin, clip.shape[-2:], diff, psnr, max_abs, min_psnr)
        publish_with_sidecar(tmp, output, meta)
    except BaseException:
        remove_path(tmp)
        raise
    return meta


def sidecar(model, opset, scale, multiple, origin, size, diff, psnr, max_abs, min_psnr):
    import onnx
    import onnxruntime
    return {
        'format': SIDECAR_FORMAT,
        'label': model.label,
        'network_g': model.net_opt,
        'source': model.source,
        'num_params': model.num_params,
        'mode': 'sliding',
        'window': int(model.window),
        'scale': int(scale),
        'size_multiple': int(multiple),
        'opset': int(opset),
        'precision': 'fp32',
        'input': {'name': INPUT_NAME, 'shape': ['batch', int(model.window), 3, 'height', 'width'],
                  'layout': 'RGB in [0, 1], frames in temporal order'},
        'output': {'name': OUTPUT_NAME, 'shape': ['batch', 3, f'{scale}*height', f'{scale}*width'],
                   'layout': 'RGB SR centre frame, unclamped'},
        'parity': {'reference': 'PyTorch eager', 'frames': origin, 'lr_size': [int(s) for s in size],
                   'max_abs_diff': diff, 'psnr_db': json_db(psnr), 'limits': {'max_abs_diff': max_abs,
                                                                             'min_psnr_db': min_psnr}},
        'versions': {'torch': torch.__version__, 'onnx': onnx.__version__, 'onnxruntime': onnxruntime.__version__},
    }
