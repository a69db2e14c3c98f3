"""Space-Time Distillation (Xiao et al., CVPR 2021) as a BasicSR model.

The student is trained exactly as :class:`ClipVSRModel` trains it (same data, pixel loss, optimizer),
plus distillation terms computed from features that forward hooks record on the frozen teacher and on
the student. Only the student is saved: its checkpoints are ordinary BasicSR checkpoints, and the
hooks live in this training model alone, so inference code and time are those of the plain student.
"""
import inspect
from collections import OrderedDict
from copy import deepcopy

import torch
import torch.distributed as dist
from torch import nn

from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

from stdsr.archs.clip_runner import run_clip, temporal_mode
from stdsr.models.clip_vsr_model import ClipVSRModel
from stdsr.runtime.train_efficiency import as_normal_tensors, phase, teacher_grad_mode
from stdsr.losses.loss_balance import ShareWeight
from stdsr.distill.teacher import build_frozen_teacher
from stdsr.distill.feature_hooks import FeatureRecorder, stack_frames
from stdsr.config.distill import DEFAULT_CALIBRATION_ITERS, LAYER_KEYS, balance_window, check_distill_options
from stdsr.config.options import OptionError
from stdsr.runtime.checkpoint import check_state_dict_fits

PROBE_SIZE = 64  # LR side of the start-up probe: small, yet large enough for SpyNet's 5-level pyramid


class DistillTerm(nn.Module):
    """One distillation loss with the student and teacher layers it reads (which may be lists).

    With ``balance`` (a :class:`ShareWeight`, from ``loss_share``) the loss is built with weight 1 and the term
    is weighted by the calibrated lambda; otherwise the loss applies its own ``loss_weight``.
    """

    def __init__(self, loss, balance, student_layer, teacher_layer):
        super().__init__()
        self.loss = loss
        self.balance = balance
        self.student_layer = student_layer
        self.teacher_layer = teacher_layer

    @property
    def freezable(self):
        """A term whose modules freeze below a threshold and are not frozen yet."""
        return hasattr(self.loss, 'update_frozen') and not self.loss.is_frozen


def as_list(layer):
    return list(layer) if isinstance(layer, (list, tuple)) else [layer]


@MODEL_REGISTRY.register()
class DistillVSRModel(ClipVSRModel):
    """``network_g`` (student) learns from ``network_t`` (frozen teacher) with ``distill.losses``."""

    def init_extra_training_modules(self):
        self.distill_opt = check_distill_options(self.opt)
        self.mode_t, self.window_t = temporal_mode(self.opt, 'network_t')
        self.net_t = build_frozen_teacher(self.opt, self.device)
        self.print_network(self.net_t)
        self.teacher_inference_mode = bool(self.distill_opt.get('teacher_inference_mode', False))
        self.efficiency.prepare_network(self.net_t)
        student = self.get_bare_model(self.net_g)
        terms = self._term_options()
        student_layers = sorted({layer for _, s, _ in terms for layer in as_list(s)})
        teacher_layers = sorted({layer for _, _, t in terms for layer in as_list(t)})
        self.rec_s = FeatureRecorder(student, student_layers)
        self.rec_t = FeatureRecorder(self.net_t, teacher_layers, detach=True)
        channels_s, channels_t = self._probe_channels()
        self.distill_terms = nn.ModuleDict()
        balance = balance_window(self.distill_opt)
        for (name, loss_opt), s_layer, t_layer in terms:
            loss_opt = self._fill_channels(loss_opt, s_layer, t_layer, channels_s, channels_t)
            self.distill_terms[name] = DistillTerm(*self.build_term_loss(loss_opt, *balance), s_layer, t_layer)
        self._check_taps(student)
        self.distill_terms.to(self.device)
        self.efficiency.prepare_network(self.distill_terms)
        self._broadcast_distill_modules()

    # ------------------------------------------------------------------------------------------ options
    def _term_options(self):
        """[((name, loss_opt without layer keys), student_layer, teacher_layer)] in option-file order."""
        terms = []
        for name, loss_opt in self.distill_opt['losses'].items():
            loss_opt = deepcopy(loss_opt)
            layers = [loss_opt.pop(key, self.distill_opt.get(key)) for key in LAYER_KEYS]  # checked in config
            terms.append(((name, loss_opt), layers[0], layers[1]))
        return terms

    @staticmethod
    def build_term_loss(loss_opt, calibration_iters=DEFAULT_CALIBRATION_ITERS, start_iter=0, track=False):
        """(loss module, balance) of one ``distill.losses`` entry: with ``loss_share`` the loss is built with
        weight 1 and a :class:`ShareWeight` weighs it, else the loss applies its own ``loss_weight``."""
        loss_opt = dict(loss_opt)
        share = loss_opt.pop('loss_share', None)
        if share is None:
            return build_loss(loss_opt), None
        loss_opt['loss_weight'] = 1.0
        return build_loss(loss_opt), ShareWeight(share, calibration_iters, start_iter, track)

    @staticmethod
    def _fill_channels(loss_opt, s_layer, t_layer, channels_s, channels_t):
        """Losses with learnable parts need the feature widths: take them from the start-up probe."""
        params = inspect.signature(LOSS_REGISTRY.get(loss_opt['type']).__init__).parameters
        for key, layer, channels in (('student_channels', s_layer, channels_s),
                                     ('teacher_channels', t_layer, channels_t)):
            if key in params and loss_opt.get(key) is None:
                widths = [channels[name] for name in as_list(layer)]
                loss_opt[key] = widths if isinstance(layer, (list, tuple)) else widths[0]
        return loss_opt

    # ------------------------------------------------------------------------------------------ start-up
    @torch.no_grad()
    def _probe_channels(self):
        """One tiny forward of both networks: checks the hooked layers fire and the two scales agree.

        Returns the channel count of every hooked layer of the student and the teacher.
        """
        lq = torch.rand(1, self._probe_num_frame(), 3, PROBE_SIZE, PROBE_SIZE, device=self.device)
        student = self.get_bare_model(self.net_g)
        was_training = student.training
        student.eval()
        try:
            out_s = run_clip(student, lq, self.mode_g, self.window_g)
            out_t = run_clip(self.net_t, lq, self.mode_t, self.window_t)
        finally:
            student.train(was_training)
        scale = self.opt.get('scale')
        scales = {'network_g': out_s.shape[-1] / PROBE_SIZE, 'network_t': out_t.shape[-1] / PROBE_SIZE}
        if scale is not None and any(s != scale for s in scales.values()):
            raise OptionError(f"scale mismatch: option 'scale' is {scale}, but network_g upscales by "
                              f"{scales['network_g']:g} and network_t by {scales['network_t']:g}")
        channels = []
        for recorder, label in ((self.rec_s, 'network_g'), (self.rec_t, 'network_t')):
            widths = {}
            for path in recorder.paths:
                calls = recorder.records[path]
                if not calls:
                    raise OptionError(f"{label} layer '{path}' was not called in a forward pass: nothing to distil")
                widths[path] = calls[0].shape[1]
            channels.append(widths)
            recorder.clear()
        return channels

    def _check_taps(self, student):
        """Losses that need a kind of feature (e.g. pre-ReLU for Overhaul) check their taps at start-up."""
        lq = torch.rand(1, self._probe_num_frame(), 3, PROBE_SIZE, PROBE_SIZE, device=self.device)
        for term in self.distill_terms.values():
            check = getattr(term.loss, 'check_taps', None)
            if check is not None:
                with torch.no_grad():
                    check(student, self.net_t, term.student_layer, term.teacher_layer,
                          lambda: run_clip(student, lq, self.mode_g, self.window_g),
                          lambda: run_clip(self.net_t, lq, self.mode_t, self.window_t))
        self.rec_s.clear()
        self.rec_t.clear()

    def _probe_num_frame(self):
        return (self.opt['datasets'].get('train') or {}).get('num_frame', 3)

    def _broadcast_distill_modules(self):
        """Ranks seed differently; the shared ConvLSTM and adapters must start from rank 0's weights."""
        if self.opt['dist']:
            for tensor in list(self.distill_terms.parameters()) + list(self.distill_terms.buffers()):
                dist.broadcast(tensor.data, src=0)

    def extra_param_groups(self):
        params = list(self.distill_terms.parameters())
        return [{'params': params}] if params else []

    # ------------------------------------------------------------------------------------------ training
    def compute_losses(self, current_iter):
        self.rec_s.clear()
        self.rec_t.clear()
        with phase(self, 'teacher_forward'):
            with teacher_grad_mode(self.teacher_inference_mode):
                run_clip(self.net_t, self.lq, self.mode_t, self.window_t)
            if self.teacher_inference_mode:
                as_normal_tensors(self.rec_t.records)
        loss_dict = super().compute_losses(current_iter)
        batch, num_frames = self.lq.shape[:2]
        # unweighted values read by after_step (balance calibration, freezing, logs): tensors, no sync here; they
        # ride on the losses' all-reduce (step_scalars) and come back rank-averaged in self.step_values
        self._step_tensors = OrderedDict(l_pix=loss_dict['l_pix'].detach())
        with phase(self, 'distill_losses'), self.efficiency.full_precision():
            for name, term in self.distill_terms.items():
                feats_s = [self.efficiency.loss_input(stack_frames(self.rec_s.records[p], batch, num_frames))
                           for p in as_list(term.student_layer)]
                feats_t = [self.efficiency.loss_input(stack_frames(self.rec_t.records[p], batch, num_frames))
                           for p in as_list(term.teacher_layer)]
                if not isinstance(term.student_layer, (list, tuple)):
                    feats_s, feats_t = feats_s[0], feats_t[0]
                loss = term.loss(feats_s, feats_t)
                if term.balance is not None:
                    self._step_tensors[f'{name}.raw'] = loss.detach()
                    loss = term.balance.weight * loss
                for key, value in getattr(term.loss, 'last_stats', {}).items():
                    self._step_tensors[f'{name}.{key}'] = value
                loss_dict[f'l_{name}'] = loss
        self.rec_s.clear()
        self.rec_t.clear()
        return loss_dict

    def sync_extra_grads(self):
        """Average the distillation modules' gradients over ranks (they are not wrapped in DDP)."""
        if not self.opt['dist']:
            return
        world_size = dist.get_world_size()
        for param in self.distill_terms.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= world_size

    def step_scalars(self):
        """The pixel loss, each raw distillation term and the time term's statistics, for ``after_step``."""
        return self._step_tensors

    def after_step(self, current_iter):
        """Balance calibration, freezing and distillation logs from this step's rank-averaged values.

        They come with the losses' one all-reduce (on the model's device: nccl reduces CUDA tensors only), so
        every rank takes the same decisions.
        """
        step = self.step_values
        for name, term in self.distill_terms.items():
            if term.balance is not None:
                term.balance.observe(step['l_pix'], step[f'{name}.raw'], current_iter)
                self.log_dict[f'{name}_lambda'] = term.balance.weight
            if term.freezable and term.loss.update_frozen(step[f'{name}.raw']):
                get_root_logger().info(f'iter {current_iter}: distill term {name} raw loss {step[f"{name}.raw"]:.3e} '
                                       'is below its freeze threshold; its modules are frozen from now on')
            if f'{name}.cell_t' in step:  # the teacher cell's mean |c|: a collapsing memory shows here
                self.log_dict[f'{name}_cell_t'] = step[f'{name}.cell_t']
            if hasattr(term.loss, 'is_frozen'):
                self.log_dict[f'{name}_frozen'] = float(term.loss.is_frozen)
        total = sum(value for key, value in self.log_dict.items() if key.startswith('l_'))
        if total > 0:
            for name in self.distill_terms:
                self.log_dict[f'share_{name}'] = self.log_dict[f'l_{name}'] / total

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def infer(self, lq):
        """Student alone, with its recorder paused so validation does not pile up HR features."""
        with self.rec_s.paused():
            return super().infer(lq)

    def extra_training_state(self):
        return {'distill_terms': self.distill_terms.state_dict()}

    def load_extra_training_state(self, state):
        if 'distill_terms' in state:  # a state of older stdsr has no options to compare: check the shapes here
            check_state_dict_fits(self.distill_terms, state['distill_terms'],
                                  "resuming: the distillation modules of the training state ('distill.losses')")
            self.distill_terms.load_state_dict(state['distill_terms'])
