"""Plain VSR training on clips: N LR frames in, N SR frames out, a pixel loss on every one of them.

This is BasicSR's video model reworked to run on CPU and CUDA alike (its DDP wrapper and validation
buffers assume CUDA) and to treat sliding-window and recurrent networks the same way, so a baseline
student and a distilled student see exactly the same data, loss and budget.
"""
import math
import os
from collections import OrderedDict
from copy import deepcopy
from os import path as osp

import numpy as np
import torch
from torch.nn.parallel import DataParallel, DistributedDataParallel

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models.base_model import BaseModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from stdsr.metrics.vsr_metrics import average_over_clips
from stdsr.errors import NonFiniteLossError
from stdsr.archs.offset_guard import guard_deformable_offsets
from stdsr.archs.clip_runner import run_clip, temporal_mode
from stdsr.runtime.train_efficiency import TrainEfficiency, eager_calls, phase
from stdsr.runtime.checkpoint import (EVAL_KEYS, atomic_torch_save, load_weights, pretrain_keys, prune_checkpoints,
                                     read_weights)
from stdsr.utils.cli import first_few
from stdsr.runtime.resume import run_options
from stdsr.runtime.device import check_data_parallel, data_parallel_device_ids
from stdsr.runtime.dist import all_gather_objects, get_dist_info, process_device
from stdsr.config.options import optimizer_class, scheduler_class
from stdsr.runtime.rng_state import capture_rng_state, restore_rng_state  # noqa: F401  (restore: re-exported)

DEFAULT_PIXEL_OPT = {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean'}


@MODEL_REGISTRY.register()
class ClipVSRModel(BaseModel):
    """Trains ``network_g`` on clips with ``train.pixel_opt`` (Charbonnier by default) on all N outputs."""

    def __init__(self, opt):
        check_data_parallel(opt)  # before anything touches a GPU
        super().__init__(opt)
        self.device = process_device(opt)
        self.mode_g, self.window_g = temporal_mode(opt, 'network_g')
        self.net_g = build_network(deepcopy(opt['network_g'])).to(self.device)
        guard_deformable_offsets(self.net_g)  # a blown-up forward stops with an error, not a segfault
        self.print_network(self.net_g)
        self.load_pretrained('network_g', self.net_g)
        if self.is_train:
            self.init_training_settings()
        else:
            self.net_g.eval()

    # ----------------------------------------------------------------------------------------------- set-up
    def load_pretrained(self, net_key, net, required=False):
        """Load ``path.pretrain_<net_key>`` into ``net`` (strict unless ``path.strict_load_<suffix>: false``).

        ``path.param_key_<suffix>`` falls back to ``params`` when the file lacks it, as in BasicSR; a bare
        state_dict (published weights such as PAN's) is taken as it is. The file is read once.
        """
        suffix = net_key.replace('network_', '')
        paths = self.opt['path']
        load_path = paths.get(f'pretrain_{net_key}')
        if load_path is None:
            if required:
                raise ValueError(f"option 'path.pretrain_{net_key}' is required")
            return False
        if not osp.isfile(load_path):
            raise FileNotFoundError(f"option 'path.pretrain_{net_key}': no such file {load_path}")
        self._load_into(net, load_path, pretrain_keys(paths.get(f'param_key_{suffix}')),
                        paths.get(f'strict_load_{suffix}', True), f'path.pretrain_{net_key}')
        return True

    def _load_into(self, net, load_path, prefer, strict, where):
        """Read ``load_path`` once (first key of ``prefer`` present, else a bare state_dict) and load it."""
        state, key = read_weights(load_path, None, prefer=prefer, what=f'option {where}')
        bare = self.get_bare_model(net)
        left = load_weights(bare, state, strict, f'option {where} ({load_path} [{key}]) for {type(bare).__name__}')
        logger = get_root_logger()
        logger.info(f'Loading {type(bare).__name__} from {load_path} [{key}]' + ('' if strict else ' (not strict)'))
        if left:
            logger.warning(f'{where}: {len(left)} network keys not in the checkpoint or of another shape, left at '
                           f'their init: {first_few(left)}')

    def init_training_settings(self):
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = train_opt.get('ema_decay', 0) or 0
        self.cri_pix = build_loss(deepcopy(train_opt.get('pixel_opt') or DEFAULT_PIXEL_OPT)).to(self.device)
        self.nan_policy = train_opt.get('nan_policy', 'stop')
        if self.nan_policy not in ('stop', 'skip'):
            raise ValueError(f"option 'train.nan_policy' must be 'stop' or 'skip', got '{self.nan_policy}'")
        self.skipped_steps = 0
        self.efficiency = TrainEfficiency(self.opt, self.device)
        self.init_extra_training_modules()
        # compiled in place before DDP wraps it: DDP's forward marks itself active while the compiled frames
        # are converted, so dynamo's DDPOptimizer still splits the graph at bucket boundaries (overlap kept)
        self.efficiency.prepare_network(self.net_g, compile_net=True)
        self.net_g = self.model_to_device(self.net_g)
        if self.ema_decay > 0:
            self.init_ema()
        self.setup_optimizers()
        self.setup_schedulers()

    def init_ema(self):
        """``net_g_ema`` from the pretrained EMA weights, else a copy of ``net_g`` *after* DDP wrapping.

        Ranks seed differently and DDP broadcasts rank 0's weights when it wraps ``net_g``; a copy taken
        before would give every rank its own EMA, and validation (clips split over ranks) would mix them.
        """
        self.net_g_ema = build_network(deepcopy(self.opt['network_g'])).to(self.device)
        load_path = self.opt['path'].get('pretrain_network_g')
        if load_path is not None:
            self._load_into(self.net_g_ema, load_path, EVAL_KEYS, self.opt['path'].get('strict_load_g', True),
                            'path.pretrain_network_g')
        else:
            self.net_g_ema.load_state_dict(self.get_bare_model(self.net_g).state_dict())
        self.net_g_ema.eval()

    def init_extra_training_modules(self):
        """Subclasses build teachers, hooks and extra losses here, before DDP wrapping and optimizers."""

    def extra_param_groups(self):
        """Extra trainable parameter groups (e.g. distillation modules) optimised with ``optim_g``."""
        return []

    def model_to_device(self, net):
        """DDP on CPU (gloo, no device ids) or GPU (nccl, this process's device); DataParallel for num_gpu > 1."""
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net, device_ids=data_parallel_device_ids(self.opt))
        return net

    def setup_optimizers(self):
        optim_opt = deepcopy(self.opt['train']['optim_g'])
        optim_cls = optimizer_class(optim_opt.pop('type'))
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        groups = [{'params': params}] + self.extra_param_groups()
        self.optimizer_g = optim_cls(groups, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def setup_schedulers(self):
        sched_opt = deepcopy(self.opt['train'].get('scheduler'))
        if not sched_opt:
            return
        sched_cls = scheduler_class(sched_opt.pop('type'))
        self.schedulers = [sched_cls(optimizer, **sched_opt) for optimizer in self.optimizers]

    # --------------------------------------------------------------------------------------------- training
    def feed_data(self, data):
        self.lq = to_device(data['lq'], self.device)
        self.gt = to_device(data['gt'], self.device) if 'gt' in data else None

    def compute_losses(self, current_iter):
        """Forward the student on the clip and return the weighted loss terms by log name."""
        with phase(self, 'student_forward'):
            self.output = run_clip(self.net_g, self.lq, self.mode_g, self.window_g)
            return OrderedDict(l_pix=self.cri_pix(self.output, self.gt))

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.efficiency.autocast():
            try:
                loss_dict = self.compute_losses(current_iter)
            except NonFiniteLossError as err:  # raised inside the forward (stdsr/archs/offset_guard.py)
                raise NonFiniteLossError(f'iter {current_iter}: {err}; the last saved checkpoint is kept') from None
        l_total = sum(loss_dict.values())
        with phase(self, 'backward'):
            self.efficiency.backward(l_total)
        self.sync_extra_grads()
        self.log_dict = self.reduce_loss_dict(loss_dict, self.step_scalars())
        bad = [name for name, value in self.log_dict.items() if not math.isfinite(value)]
        if bad:
            self.handle_non_finite(current_iter, bad)
            return
        with phase(self, 'optimizer_step'):
            grad_clip = self.opt['train'].get('grad_clip')
            if grad_clip:
                # the student alone: distillation modules in the same optimizer must not change how the student
                # is clipped, or a distilled student and its baseline would be trained differently
                self.efficiency.unscale(self.optimizer_g)
                torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), grad_clip)
            self.efficiency.step(self.optimizer_g)
            self.after_step(current_iter)
            if self.ema_decay > 0:
                self.model_ema(decay=self.ema_decay)

    def sync_extra_grads(self):
        """Subclasses average gradients of trainable modules that are not wrapped in DDP."""

    def after_step(self, current_iter):
        """Subclasses update state that depends on the step's (rank-averaged) losses."""

    def handle_non_finite(self, current_iter, bad_terms):
        terms = ', '.join(f'{name}={self.log_dict[name]}' for name in bad_terms)
        if self.nan_policy == 'skip':
            self.skipped_steps += 1
            self.optimizer_g.zero_grad(set_to_none=True)
            get_root_logger().warning(f'iter {current_iter}: non-finite loss ({terms}); step skipped '
                                      f'({self.skipped_steps} so far)')
            self.log_dict['skipped_steps'] = float(self.skipped_steps)
            return
        raise NonFiniteLossError(f'iter {current_iter}: non-finite loss ({terms}); training stopped, the last '
                                 "saved checkpoint is kept (set 'train.nan_policy: skip' to skip such steps)")

    def step_scalars(self):
        """Subclass scalars (0-d tensors or numbers) that ``after_step`` needs as rank-averaged floats.

        They ride on the losses' all-reduce and host read, on the model's device, so a step costs one
        collective and one host sync however many values are read; ``after_step`` finds them in
        ``self.step_values``.
        """
        return {}

    def reduce_loss_dict(self, loss_dict, extra=None):
        """Rank-averaged float losses on every rank (BasicSR reduces to rank 0 only; all ranks must agree
        on decisions taken from losses, such as stopping on NaN or freezing a module).

        This is the step's one host sync: the NaN guard must decide before the optimizer step.
        """
        extra = extra or {}
        with torch.no_grad():
            names = list(loss_dict)
            scalars = [loss_dict[k].detach().float().mean() for k in names]
            scalars += [torch.as_tensor(v).detach().to(self.device, torch.float32).reshape(()) for v in extra.values()]
            values = torch.stack(scalars)
            if self.opt['dist']:
                torch.distributed.all_reduce(values)
                values /= self.opt['world_size']
            floats = values.tolist()
        self.step_values = OrderedDict(zip(extra, floats[len(names):]))
        return OrderedDict(zip(names, floats[:len(names)]))

    # ------------------------------------------------------------------------------------------- inference
    def inference_net(self):
        net = self.net_g_ema if getattr(self, 'net_g_ema', None) is not None else self.net_g
        return self.get_bare_model(net)

    @torch.no_grad()
    def infer(self, lq):
        """SR of every frame of ``lq`` (B, N, C, h, w) with the (EMA) student alone, in eval mode."""
        net = self.inference_net()
        was_training = net.training
        net.eval()
        chunk = (self.opt.get('val') or {}).get('chunk_windows', 8)
        try:
            with eager_calls(net):  # the compiled training graph would recompile for eval, no_grad, full frames
                return run_clip(net, lq, self.mode_g, self.window_g, chunk=chunk)
        finally:
            net.train(was_training)

    def test(self):
        self.output = self.infer(self.lq)

    def get_current_visuals(self):
        out = OrderedDict(lq=self.lq.detach().cpu(), result=self.output.detach().cpu())
        if self.gt is not None:
            out['gt'] = self.gt.detach().cpu()
        return out

    # ------------------------------------------------------------------------------------------ validation
    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """PSNR/SSIM per clip (frames averaged), then averaged over clips as the VSR literature reports.

        Clips are split over ranks and the per-clip results gathered, so it works with and without a
        process group, on CPU and CUDA. Returns ``{'dataset', 'per_clip', 'average'}``.
        """
        dataset = dataloader.dataset
        dataset_name = dataset.opt['name']
        val_opt = self.opt.get('val') or {}
        metrics_opt = val_opt.get('metrics') or {}
        rank, world_size = get_dist_info()
        num_clips = min(len(dataset), val_opt.get('max_clips') or len(dataset))
        per_clip = OrderedDict()
        for idx in range(rank, num_clips, world_size):
            data = dataset[idx]
            sr = self.infer(data['lq'][None].to(self.device))[0].cpu()
            gt = data.get('gt')
            frame_metrics = []
            for t, frame_name in enumerate(data['frame_names']):
                sr_img = tensor2img(sr[t])
                if save_img:
                    imwrite(sr_img, self._visual_path(dataset_name, data['clip'], frame_name, current_iter))
                if gt is not None and metrics_opt:
                    gt_img = tensor2img(gt[t])
                    frame_metrics.append({
                        name: float(calculate_metric(dict(img=sr_img, img2=gt_img), deepcopy(mopt)))
                        for name, mopt in metrics_opt.items()
                    })
            if frame_metrics:
                per_clip[data['clip']] = {name: float(np.mean([f[name] for f in frame_metrics]))
                                          for name in metrics_opt}
        merged = OrderedDict()
        for part in all_gather_objects(per_clip):
            merged.update(part)
        merged = OrderedDict(sorted(merged.items()))
        average = OrderedDict(average_over_clips(merged, metrics=list(metrics_opt)))  # each clip counts once
        self.metric_results = average
        if average and rank == 0:
            self._initialize_best_metric_results(dataset_name)
            for name, value in average.items():
                self._update_best_metric_result(dataset_name, name, value, current_iter)
            self._log_validation(dataset_name, current_iter, merged, average, tb_logger)
        self.last_validation = {'dataset': dataset_name, 'per_clip': merged, 'average': average}
        return self.last_validation

    def _visual_path(self, dataset_name, clip, frame_name, current_iter):
        root = self.opt['path']['visualization']
        if self.is_train:
            name = f'{frame_name}_{current_iter}.png'
        else:
            suffix = (self.opt.get('val') or {}).get('suffix')
            name = f'{frame_name}_{suffix}.png' if suffix else f'{frame_name}.png'
        return osp.join(root, dataset_name, clip, name)

    def _log_validation(self, dataset_name, current_iter, per_clip, average, tb_logger):
        lines = [f'Validation {dataset_name} (iter {current_iter})']
        for clip, values in per_clip.items():
            lines.append(f'\t {clip:>20s}: ' + ', '.join(f'{k}: {v:.4f}' for k, v in values.items()))
        for name, value in average.items():
            best = self.best_metric_results[dataset_name][name]
            lines.append(f'\t # {name}: {value:.4f}\tBest: {best["val"]:.4f} @ {best["iter"]} iter')
            if tb_logger is not None:
                tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)
        get_root_logger().info('\n'.join(lines))

    # ------------------------------------------------------------------------------------------ checkpoints
    def save(self, epoch, current_iter, loop_state=None):
        """Student checkpoint and training state; then the oldest beyond ``logger.keep_last_checkpoints``."""
        if getattr(self, 'net_g_ema', None) is not None:
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        # every rank's RNG state (a collective, so before the rank-0-only save)
        rng_states = all_gather_objects(capture_rng_state()) if current_iter != -1 else None
        self.save_training_state(epoch, current_iter, loop_state, rng_states)
        keep = (self.opt.get('logger') or {}).get('keep_last_checkpoints')
        if keep and current_iter != -1 and get_dist_info()[0] == 0:
            prune_checkpoints(self.opt['path']['models'], self.opt['path']['training_states'], int(keep))

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's checkpoint layout, written atomically (a kill never leaves a truncated file)."""
        label = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = self.get_bare_model(net_).state_dict()
            save_dict[key] = OrderedDict((k[7:] if k.startswith('module.') else k, v.detach().cpu())
                                         for k, v in state.items())
        os.makedirs(self.opt['path']['models'], exist_ok=True)
        atomic_torch_save(save_dict, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def extra_training_state(self):
        """Subclass state that must survive resume (e.g. distillation modules)."""
        return {}

    def load_extra_training_state(self, state):
        pass

    @master_only
    def save_training_state(self, epoch, current_iter, loop_state=None, rng_states=None):
        if current_iter == -1:
            return
        rng_states = rng_states or [capture_rng_state()]
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'loop': loop_state or {},
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'extra': self.extra_training_state(),
            'skipped_steps': getattr(self, 'skipped_steps', 0),
            'rng': rng_states[0],  # rank 0's, as before
            'rng_per_rank': rng_states,
            'options': run_options(self.opt),  # a resume compares them with its own (stdsr/runtime/resume.py)
        }
        if getattr(self, 'efficiency', None) is not None and self.efficiency.state_dict():
            state['efficiency'] = self.efficiency.state_dict()  # the fp16 GradScaler's scale
        os.makedirs(self.opt['path']['training_states'], exist_ok=True)
        atomic_torch_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        self.load_extra_training_state(resume_state.get('extra') or {})
        self.skipped_steps = resume_state.get('skipped_steps', 0)
        self.efficiency.load_state_dict(resume_state.get('efficiency') or {})


def to_device(tensor, device):
    """Asynchronous copy only from pinned memory (from pageable memory ``non_blocking`` buys nothing)."""
    return tensor.to(device, non_blocking=tensor.is_pinned())
