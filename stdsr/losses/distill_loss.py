"""Space-Time Distillation losses (Xiao et al., CVPR 2021) on the per-frame F^SR features of student and teacher.

Both losses take (B, N, C, H, W) clips of features (see ``stdsr.distill.feature_hooks.stack_frames``) and treat the
teacher features as constants: the teacher network never receives gradients from them.
"""
import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY
from stdsr.archs.convlstm_arch import ConvLSTM

_reduction_modes = ['none', 'mean', 'sum']
_mappings = ['sum_pow', 'max_pow']
_normalizations = ['none', 'l2']


def attention_map(feat, mapping='sum_pow', p=2, normalize='none', eps=1e-12):
    """Collapse channels into a spatial attention map: (..., C, H, W) -> (..., H, W).

    Channel-agnostic on purpose, so a thin student can be compared with a wide teacher.

    Args:
        feat (Tensor): Features of shape (..., C, H, W).
        mapping (str): 'sum_pow': sum_c |F_c|^p (the paper's choice with p=2; p=1 is its sum |F_c| variant);
            'max_pow': max_c |F_c|^p (the paper's max variant with p=2). Default: 'sum_pow'.
        p (float): Exponent. Default: 2.
        normalize (str): 'none' (the paper) or 'l2': divide each map, flattened spatially, by its L2 norm + eps
            (as attention transfer, Zagoruyko & Komodakis 2017), which compares where, not how strongly, the
            features fire. Default: 'none'.
        eps (float): Added to the norm for 'l2'. Default: 1e-12.
    """
    if mapping not in _mappings:
        raise ValueError(f'Unsupported attention mapping: {mapping}. Supported ones are: {_mappings}')
    if normalize not in _normalizations:
        raise ValueError(f'Unsupported attention normalize: {normalize}. Supported ones are: {_normalizations}')
    if p <= 0:
        raise ValueError(f'Attention exponent p must be positive, got {p}')
    if feat.dim() < 3:
        raise ValueError(f'attention_map expects (..., C, H, W), got shape {tuple(feat.shape)}')

    powered = feat.abs() if p == 1 else feat.abs().pow(p)
    amap = powered.sum(dim=-3) if mapping == 'sum_pow' else powered.amax(dim=-3)
    if normalize == 'l2':
        norm = amap.flatten(-2).norm(p=2, dim=-1)[..., None, None]
        amap = amap / (norm + eps)
    return amap


def _check_pair(student_feat, teacher_feat, name):
    """Shapes must agree everywhere but in the channel dim; say which shapes when they do not."""
    if student_feat.dim() != 5 or teacher_feat.dim() != 5:
        raise ValueError(f'{name} expects (B, N, C, H, W) features, got student {tuple(student_feat.shape)} and '
                         f'teacher {tuple(teacher_feat.shape)}')
    s_shape, t_shape = student_feat.shape, teacher_feat.shape
    if s_shape[:2] != t_shape[:2] or s_shape[-2:] != t_shape[-2:]:
        raise ValueError(f'{name}: student and teacher features must share batch, frames and spatial size '
                         f'(channels may differ); got student {tuple(s_shape)} and teacher {tuple(t_shape)}')


@LOSS_REGISTRY.register()
class SpaceDistillLoss(nn.Module):
    """Space distillation (L_SD): match the spatial attention maps of student and teacher F^SR, frame by frame.

    The paper's "L2 distance" between maps is implemented as the mean squared difference per map (mean over
    H, W), so the loss scale does not grow with the patch size; ``reduction`` then acts over the (B, N) maps.

    Args:
        loss_weight (float): Loss weight. Default: 1.0.
        mapping (str): See :func:`attention_map`. Default: 'sum_pow'.
        p (float): See :func:`attention_map`. Default: 2.
        normalize (str): See :func:`attention_map`. Default: 'none'.
        reduction (str): Over the (B, N) per-map MSEs: 'none' | 'mean' | 'sum'. Default: 'mean'.
    """

    def __init__(self, loss_weight=1.0, mapping='sum_pow', p=2, normalize='none', reduction='mean'):
        super(SpaceDistillLoss, self).__init__()
        if reduction not in _reduction_modes:
            raise ValueError(f'Unsupported reduction mode: {reduction}. Supported ones are: {_reduction_modes}')
        # validate mapping/normalize/p now rather than at the first training iteration
        attention_map(torch.zeros(1, 1, 1), mapping=mapping, p=p, normalize=normalize)
        self.loss_weight = loss_weight
        self.mapping = mapping
        self.p = p
        self.normalize = normalize
        self.reduction = reduction

    def forward(self, student_feat, teacher_feat, **kwargs):
        """
        Args:
            student_feat (Tensor): (B, N, C_s, H, W) student F^SR.
            teacher_feat (Tensor): (B, N, C_t, H, W) teacher F^SR (detached here).
        """
        _check_pair(student_feat, teacher_feat, 'SpaceDistillLoss')
        opts = dict(mapping=self.mapping, p=self.p, normalize=self.normalize)
        s_map = attention_map(student_feat, **opts)
        t_map = attention_map(teacher_feat.detach(), **opts)
        per_map = F.mse_loss(s_map, t_map, reduction='none').mean(dim=(-2, -1))  # (B, N)
        if self.reduction == 'mean':
            per_map = per_map.mean()
        elif self.reduction == 'sum':
            per_map = per_map.sum()
        return self.loss_weight * per_map


_td_forms = ['fixed', 'paper']
_td_standardize = ['none', 'clip']


@LOSS_REGISTRY.register()
class TimeDistillLoss(nn.Module):
    """Time distillation (L_TD): compare the final cell states of ONE ConvLSTM run over student and teacher F^SR.

    ``form='paper'`` is the paper read literally: the shared ConvLSTM is trained by L_TD = MSE(c_s, c_t) through
    both streams and frozen once L_TD < ``freeze_threshold``. It can win without the student: shrinking both cell
    states lowers L_TD whatever the student does, and the freeze then locks the collapse in (kept for ablations).

    ``form='fixed'`` (default) keeps the paper's structure (one ConvLSTM shared by both streams, final cell states
    compared) but makes the ConvLSTM a fixed measuring stick, so that only the student can lower L_TD:

    - the ConvLSTM keeps its (seeded, rank-0-broadcast) initial weights and gets no gradient. A ConvLSTM trained
      by L_TD collapses; one trained by a teacher-only objective (we tried reconstructing and predicting the
      teacher's features) also changes how strongly it responds to the student-teacher difference, and lowered
      L_TD 10-70x with a student that never improved (docs/method.md);
    - the cells are compared relative to the teacher cell's variance, mean((c_s - c_t)^2) / var(c_t) per clip:
      scale-free, so ``loss_weight`` and ``freeze_threshold`` mean the same for any pair of networks;
    - the teacher stream carries no autograd graph (constant input, constant weights).

    Teacher features are detached in both forms: the teacher network never receives gradients.

    Our extensions: a learnable 1x1 conv ``adapter`` maps the student width to the teacher width when they differ
    (else identity), so the shared ConvLSTM sees equally wide inputs; it trains with the student in both forms and
    freezes with the ConvLSTM. ``pool`` > 1 average-pools F^SR before the ConvLSTM, which bounds its cost at HR.
    ``standardize='clip'`` gives each stream's ConvLSTM input zero mean and unit variance per clip (over frames,
    channels and pixels), so L_TD compares how F^SR is arranged and how it changes over the clip, not its scale: at
    the start a fresh adapter's scale error alone makes raw L_TD ~200 (docs/method.md), and a weight calibrated
    there is far too small once the adapter has learnt the scale.

    Args:
        student_channels (int): Channels of the student F^SR.
        teacher_channels (int): Channels of the teacher F^SR (the ConvLSTM input width).
        hidden_channels (int): ConvLSTM hidden/cell channels. Default: 16.
        kernel_size (int): ConvLSTM kernel size. Default: 3.
        pool (int): Average-pooling factor applied to F^SR first; 1 disables it. Default: 1.
        form (str): 'fixed' (default) or 'paper', see above.
        standardize (str): 'none' (default) or 'clip', see above.
        freeze_threshold (float): Freeze the trainable modules (ConvLSTM in the paper's form, adapter) once the
            unweighted loss is below it. Default: 1e-8.
        loss_weight (float): Loss weight. Default: 1.0.
        eps (float): Added to the teacher cell variance in the 'fixed' comparison. Default: 1e-8.
    """

    def __init__(self,
                 student_channels,
                 teacher_channels,
                 hidden_channels=16,
                 kernel_size=3,
                 pool=1,
                 form='fixed',
                 standardize='none',
                 freeze_threshold=1e-8,
                 loss_weight=1.0,
                 eps=1e-8):
        super(TimeDistillLoss, self).__init__()
        if int(pool) != pool or pool < 1:
            raise ValueError(f'TimeDistillLoss pool must be a positive integer, got {pool}')
        if form not in _td_forms:
            raise ValueError(f'Unsupported TimeDistillLoss form: {form}. Supported ones are: {_td_forms}')
        if standardize not in _td_standardize:
            raise ValueError(f'Unsupported TimeDistillLoss standardize: {standardize}. Supported ones are: '
                             f'{_td_standardize}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.pool = int(pool)
        self.form = form
        self.standardize = standardize
        self.freeze_threshold = freeze_threshold
        self.loss_weight = loss_weight
        self.eps = eps
        self.convlstm = ConvLSTM(teacher_channels, hidden_channels, kernel_size)
        if form == 'fixed':
            self.convlstm.requires_grad_(False)
        if student_channels != teacher_channels:
            self.adapter = nn.Conv2d(student_channels, teacher_channels, 1)
        else:
            self.adapter = nn.Identity()
        # persistent so that a resumed run stays frozen; requires_grad is restored in _load_from_state_dict
        self.register_buffer('frozen', torch.tensor(False), persistent=True)
        self._is_frozen = False  # mirrors `frozen` on the host: read every step, it must not sync a GPU
        self.last_stats = {}

    @property
    def is_frozen(self):
        return self._is_frozen

    def trainable_modules(self):
        """What trains with the student (and freezes below the threshold): the adapter, and the paper's ConvLSTM."""
        return [self.adapter] + ([self.convlstm] if self.form == 'paper' else [])

    def _set_trainable(self, trainable):
        for module in self.trainable_modules():
            for param in module.parameters():
                param.requires_grad_(trainable)
                if not trainable:
                    param.grad = None  # a stale grad would otherwise keep being applied by the optimizer

    def update_frozen(self, raw_loss_value):
        """Freeze the trainable modules for good once ``raw_loss_value`` < freeze_threshold.

        ``raw_loss_value`` is the UNWEIGHTED loss (``last_stats['raw']``). Under DDP the caller must pass a value
        all ranks agree on (all-reduce it first); otherwise ranks freeze at different iterations and diverge.

        Returns:
            bool: Whether the module is frozen after this call.
        """
        if not self.is_frozen and float(raw_loss_value) < self.freeze_threshold:
            self.frozen.fill_(True)
            self._is_frozen = True
            self._set_trainable(False)
        return self.is_frozen

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # loading copies values only; the host flag and the requires_grad flags must follow the loaded `frozen`
        self._is_frozen = bool(self.frozen)
        self._set_trainable(not self.is_frozen)

    def _prepare(self, feat, adapter=None):
        """(B, N, C, H, W) -> pooled (and adapted) ConvLSTM input, same layout.

        Pooling comes before the 1x1 adapter: both are linear per pixel, so they commute, and the adapter then
        runs on pool**2 times fewer pixels.
        """
        b, n, c, h, w = feat.shape
        feat = feat.reshape(b * n, c, h, w)
        if self.pool > 1:
            if h < self.pool or w < self.pool:
                raise ValueError(f'TimeDistillLoss pool={self.pool} exceeds the feature size {h}x{w}')
            feat = F.avg_pool2d(feat, self.pool)
        if adapter is not None:
            feat = adapter(feat)
        feat = feat.reshape(b, n, *feat.shape[1:])
        if self.standardize == 'clip':
            flat = feat.flatten(1)
            feat = ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + self.eps)).view_as(feat)
        return feat

    def _final_cells(self, student_feat, teacher_feat):
        """Final cell states of both streams from ONE ConvLSTM pass over the two batches side by side.

        The shared ConvLSTM treats every clip independently, so this is the two separate passes in half the
        operator calls; the teacher half carries no graph in the fixed form (constant input and weights).
        """
        seq_s = self._prepare(student_feat, self.adapter)
        seq_t = self._prepare(teacher_feat.detach())
        _, (_, cells) = self.convlstm(torch.cat([seq_s, seq_t], dim=0))
        return cells.split([seq_s.size(0), seq_t.size(0)], dim=0)

    def forward(self, student_feat, teacher_feat, **kwargs):
        """
        Args:
            student_feat (Tensor): (B, N, student_channels, H, W) student F^SR.
            teacher_feat (Tensor): (B, N, teacher_channels, H, W) teacher F^SR (detached here).
        """
        _check_pair(student_feat, teacher_feat, 'TimeDistillLoss')
        if student_feat.size(2) != self.student_channels or teacher_feat.size(2) != self.teacher_channels:
            raise ValueError(f'TimeDistillLoss was built for student/teacher channels {self.student_channels}/'
                             f'{self.teacher_channels}, got features {tuple(student_feat.shape)} and '
                             f'{tuple(teacher_feat.shape)}')
        cell_s, cell_t = self._final_cells(student_feat, teacher_feat)
        if self.form == 'paper':
            raw = F.mse_loss(cell_s, cell_t)
        else:
            per_clip = (cell_s - cell_t).pow(2).flatten(1).mean(1) / (cell_t.flatten(1).var(1) + self.eps)
            raw = per_clip.mean()
        self.last_stats = {'raw': raw.detach(), 'cell_t': cell_t.detach().abs().mean()}
        return self.loss_weight * raw
