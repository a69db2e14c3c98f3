"""Training-time efficiency options (``train.efficiency``) and the phase-timing hook the training models call.

Distillation costs training time only, so everything here touches the training step and nothing else: the
saved student, its checkpoint keys and inference (``infer``/validation run in float32, uncompiled or not, with the
same weights) stay as they are. With every option off (the default) each helper is the identity, so a step is
bit-identical to a step without this module.

Options (validated in ``stdsr.config.options``)::

    train:
      efficiency:
        channels_last: false   # NHWC weights for the student, the teacher and the distillation modules
        amp: ~                 # bf16 (CPU or CUDA) | fp16 (CUDA only, with a GradScaler) | ~ (float32)
        compile: false         # torch.compile the student in place; a failure is logged and falls back to eager
    distill:
      teacher_inference_mode: false   # teacher forward under torch.inference_mode instead of no_grad
"""
import contextlib
import time

import torch

from basicsr.utils import get_root_logger

from stdsr.runtime.device import bf16_native
from stdsr.errors import OptionError

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def phase(model, name):
    """Time the block as phase ``name`` when a profiler has set ``model.phase_timer``; else do nothing.

    The training models call this around their teacher forward, student forward, distillation losses, backward
    and optimizer step, so ``scripts/profile_train.py`` measures the real step rather than a re-implementation.
    """
    timer = getattr(model, 'phase_timer', None)
    return contextlib.nullcontext() if timer is None else timer.phase(name)


def teacher_grad_mode(inference_mode):
    """``torch.inference_mode()`` (no version counters or view tracking) or today's ``torch.no_grad()``."""
    return torch.inference_mode() if inference_mode else torch.no_grad()


def as_normal_tensors(records):
    """Clone inference tensors recorded by hooks into ordinary ones, in place of the lists of ``records``.

    Inference tensors cannot be saved for backward, and any loss that multiplies a teacher feature with a student
    one (FitNet-style MSE, FSP, ...) saves it. The clone costs one copy of the recorded features.
    """
    for path, calls in records.items():
        records[path] = [c.clone() if c.is_inference() else c for c in calls]
    return records


class TrainEfficiency:
    """The ``train.efficiency`` options of one training model, resolved for its device.

    Args:
        opt (dict): Full options (reads ``train.efficiency``).
        device (torch.device): The device this process trains on.
    """

    def __init__(self, opt, device):
        eff = dict((opt.get('train') or {}).get('efficiency') or {})
        self.device = torch.device(device)
        self.channels_last = bool(eff.get('channels_last', False))
        self.compile = bool(eff.get('compile', False))
        amp = eff.get('amp') or None
        if amp is not None and amp not in AMP_DTYPES:
            raise OptionError(f"option 'train.efficiency.amp' must be one of {sorted(AMP_DTYPES)} or ~, got {amp!r}")
        if amp == 'fp16' and self.device.type != 'cuda':
            raise OptionError("option 'train.efficiency.amp: fp16' needs CUDA (float16 training needs a GradScaler "
                              'and fast fp16 kernels); use bf16 on CPU')
        if amp == 'bf16' and self.device.type == 'cuda' and not bf16_native(self.device):
            raise OptionError("option 'train.efficiency.amp: bf16': this GPU has no native bfloat16 (compute "
                              'capability below 8.0); use fp16')
        self.amp = amp
        self.amp_dtype = AMP_DTYPES.get(amp)
        self.scaler = torch.amp.GradScaler('cuda') if amp == 'fp16' else None
        self.compile_seconds = None  # wall time of the first compiled call (compilation included), once known

    @property
    def active(self):
        return self.channels_last or self.compile or self.amp is not None

    def describe(self):
        return {'channels_last': self.channels_last, 'amp': self.amp, 'compile': self.compile}

    # ------------------------------------------------------------------------------------------- networks
    def prepare_network(self, net, compile_net=False):
        """NHWC weights when asked; compile in place (keeps the module, its hooks and its state_dict keys)."""
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if compile_net and self.compile:
            compile_with_fallback(net, self)
        return net

    # ------------------------------------------------------------------------------------------ precision
    def autocast(self):
        """Mixed precision for the forward passes (identity when ``amp`` is off)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def full_precision(self):
        """Leave autocast for the distillation losses: sums of squared features overflow fp16 and lose bits in bf16."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def loss_input(self, feat):
        """A feature recorded under autocast, back in float32 for a loss; unchanged when ``amp`` is off."""
        if self.amp_dtype is not None and feat.dtype in (torch.float16, torch.bfloat16):
            return feat.float()
        return feat

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer):
        """Bring fp16-scaled gradients back to their true size (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer):
        """``optimizer.step()``; with a GradScaler, skipped when gradients overflowed and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self):
        return {'scaler': self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state):
        if self.scaler is not None and state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])


def compile_with_fallback(net, efficiency=None):
    """``net.compile()`` whose first call falls back to eager, with a warning, if compilation fails.

    ``torch.compile`` is lazy: a missing C++ compiler (CPU inductor) or an unsupported op only shows up in the first
    forward. Rather than losing a training run to it, that first call is retried eagerly and the module stays eager
    from then on. The first compiled call's wall time (compilation included) goes to ``efficiency.compile_seconds``.
    """
    net.compile()
    compiled = net._compiled_call_impl
    state = {'checked': False}

    def guarded_call(*args, **kwargs):
        if state['checked']:
            return compiled(*args, **kwargs)
        start = time.perf_counter()
        try:
            out = compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001  (any compiler failure: fall back, loudly)
            net._compiled_call_impl = None
            get_root_logger().warning(f"option 'train.efficiency.compile': torch.compile of {type(net).__name__} "
                                      f'failed ({type(err).__name__}: {str(err).splitlines()[0][:300]}); '
                                      'training continues without compilation')
            return net._call_impl(*args, **kwargs)
        state['checked'] = True
        if efficiency is not None:
            efficiency.compile_seconds = time.perf_counter() - start
        get_root_logger().info(f'torch.compile of {type(net).__name__}: first call (compilation included) took '
                               f'{time.perf_counter() - start:.1f} s')
        return out

    net._compiled_call_impl = guarded_call
    return net


@contextlib.contextmanager
def eager_calls(net):
    """Run ``net`` (compiled in place) eagerly inside the block: validation and inference.

    The compiled graph was traced for training: eval mode, no_grad and full-frame sizes would each recompile
    it (and a failing recompile would end the run). The module, its weights and hooks are the same.
    """
    compiled = getattr(net, '_compiled_call_impl', None)
    net._compiled_call_impl = None
    try:
        yield net
    finally:
        net._compiled_call_impl = compiled


def is_compiled(net):
    """Whether ``net`` still runs through torch.compile (False after a fallback)."""
    return getattr(net, '_compiled_call_impl', None) is not None
