"""An exported student in onnxruntime, with the inference interface of a loaded PyTorch model.

:class:`OnnxStudent` has what :func:`stdsr.inference.vsr_inference.chunked_sr` and the benchmark use of a
:class:`stdsr.inference.model_loading.LoadedModel` (``label``, ``mode``, ``window``, ``scale``, ``infer``), so the
chunked, bounded-memory inference runs unchanged without a PyTorch network. The model's sidecar (written by
:func:`stdsr.deploy.onnx_export.export_student`, read by :mod:`stdsr.deploy.sidecar`) says its window and scale;
both are checked against the graph at load, and against an option file when one is given.
"""
from os import path as osp

import numpy as np
import torch

from stdsr.errors import OnnxModelError  # noqa: F401  (raised here; imported from here too)
from stdsr.archs.clip_runner import window_indices
from stdsr.deploy.sidecar import INPUT_NAME, read_sidecar, sidecar_path
from stdsr.errors import ModelLoadError
from stdsr.inference.model_loading import read_arch_options, temporal_design
from stdsr.utils.cli import UserInputError

PROBE_SIDE = 16  # LR side of the scale probe (a multiple of 4, as EDVR's pyramid wants)


def providers_for(device='cpu'):
    import onnxruntime as ort
    if device in ('cuda', 'auto') and 'CUDAExecutionProvider' in ort.get_available_providers():
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    if device == 'cuda':
        raise OnnxModelError("--device cuda: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    return ['CPUExecutionProvider']


def open_session(path, threads=None, device='cpu', what=None):
    """onnxruntime session of ``path`` (``threads``: intra-op threads, None for onnxruntime's default)."""
    import onnxruntime as ort
    what = what or path
    if not osp.isfile(path):
        raise OnnxModelError(f'ONNX model {path} does not exist')
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers_for(device))
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf/NotImplemented types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxModelError(f'{what}: onnxruntime cannot load it as an ONNX model ({reason[:300]})') from None


def options_scale_window(opt_path):
    """(scale, window) an option file (or a bare network section) declares, for checking an ONNX model."""
    try:
        net_opt, temporal, scale = read_arch_options(opt_path)
        mode, window = temporal_design(net_opt, temporal, opt_path)
    except ModelLoadError as err:
        raise OnnxModelError(str(err)) from None
    scale = scale if scale is not None else net_opt.get('scale')
    return scale, (window if mode == 'sliding' else None)


class OnnxStudent:
    """A sliding-window student in onnxruntime: ``infer`` maps (B, N, 3, h, w) to (B, N, 3, s*h, s*w) like
    :meth:`LoadedModel.infer`, running the N windows (borders replicated) ``chunk`` at a time."""

    mode = 'sliding'
    is_bicubic = False

    def __init__(self, path, threads=None, device='cpu', label=None):
        self.path = path
        self.meta = read_sidecar(path)
        self.session = open_session(path, threads, device)
        self.window, self.declared_scale = int(self.meta['window']), int(self.meta['scale'])
        self.size_multiple = int(self.meta.get('size_multiple', 1))
        self.label = label or self.meta.get('label') or osp.splitext(osp.basename(path))[0]
        self.device = torch.device('cpu')  # outputs come back as CPU tensors whatever the provider
        self.source = f"onnx {path} ({self.meta.get('precision', 'fp32')}, opset {self.meta.get('opset')})"
        self.num_params = self.meta.get('num_params')
        self._check_graph()

    @property
    def scale(self):
        return self.declared_scale

    def _check_graph(self):
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or len(inputs[0].shape) != 5:
            raise OnnxModelError(f"ONNX model {self.path}: expected one 5-d input '{INPUT_NAME}' (batch, T, 3, h, w), "
                                 f'got {[(i.name, i.shape) for i in inputs]}')
        graph_window = inputs[0].shape[1]
        if graph_window != self.window:
            raise OnnxModelError(f'ONNX model {self.path} takes windows of {graph_window} frames but its sidecar '
                                 f'{sidecar_path(self.path)} says {self.window}')
        side = PROBE_SIDE
        out = self.run_windows(np.zeros((1, self.window, 3, side, side), np.float32))
        if tuple(out.shape[-2:]) != (side * self.scale, side * self.scale):
            raise OnnxModelError(f'ONNX model {self.path} maps {side}x{side} to {out.shape[-2]}x{out.shape[-1]} '
                                 f'but its sidecar {sidecar_path(self.path)} says x{self.scale}')

    def check_options(self, opt_path):
        """The option file describes this model: same scale and window, else a one-line error."""
        scale, window = options_scale_window(opt_path)
        if window is None:
            raise OnnxModelError(f'{opt_path} describes a recurrent network but ONNX model {self.path} is a '
                                 f'sliding window of {self.window} frames')
        if (scale is not None and int(scale) != self.scale) or int(window) != self.window:
            raise OnnxModelError(f'ONNX model {self.path} is x{self.scale} with a window of {self.window} frames but '
                                 f'{opt_path} says x{scale} with a window of {window}')

    def run_windows(self, windows):
        """(n, T, 3, h, w) float32 numpy -> (n, 3, s*h, s*w) float32 numpy."""
        h, w = windows.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise OnnxModelError(f'ONNX model {self.path} needs frame sizes that are multiples of {m}, got {w}x{h}')
        return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(windows, dtype=np.float32)})[0]

    @torch.no_grad()
    def infer(self, lq, chunk=None):
        """SR of every frame of ``lq`` (B, N, 3, h, w) in [0, 1] -> (B, N, 3, H, W) float CPU tensor."""
        b, n = lq.shape[:2]
        windows = lq.float().cpu()[:, window_indices(n, self.window)].flatten(0, 1).numpy()
        step = chunk or windows.shape[0]
        out = np.concatenate([self.run_windows(windows[i:i + step]) for i in range(0, windows.shape[0], step)])
        return torch.from_numpy(out).view(b, n, *out.shape[1:])


def onnx_model_from_args(args):
    """The ``--onnx`` model of an inference command line; ``--opt``/``--arch-opt`` files are checked against it."""
    specs = getattr(args, 'model_specs', None) or []
    if any(kind == 'ckpt' for kind, _ in specs):
        raise OnnxModelError('--onnx runs the exported model: --ckpt is not used, drop it (--opt or --arch-opt '
                             'are checked against the ONNX model)')
    model = OnnxStudent(args.onnx, threads=getattr(args, 'threads', None), device=getattr(args, 'device', 'cpu'))
    for path in [value.split('=', 1)[-1] if not osp.isfile(value) else value for _, value in specs] + list(
            getattr(args, 'arch_opt', None) or []):
        model.check_options(path)
    return model
