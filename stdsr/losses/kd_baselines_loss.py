"""Distillation baselines the STD paper measures itself against, as hook-driven losses for ``DistillVSRModel``.

Every loss is called as ``loss(student_feats, teacher_feats)`` with per-frame features (B, N, C, H, W) recorded by
forward hooks, or with equally long lists of them when the term's layer options are lists. Teacher features are
constants (detached here as well); learnable parts (regressors) are trained with the student. The definitions,
the choices we made where a paper leaves room, and the EDVR taps we use are documented in
``docs/distillation_methods.md``.

- :class:`OutputDistillLoss`: student SR frames against teacher SR frames (layer path ``''``).
- :class:`FitNetHintLoss`: FitNets (Romero et al., ICLR 2015), 1x1 conv regressor + L2 hint.
- :class:`AttentionTransferLoss`: attention transfer (Zagoruyko & Komodakis, ICLR 2017).
- :class:`FSPLoss`: flow of solution procedure matrices (Yim et al., CVPR 2017).
- :class:`FeatureStatsDistillLoss`: first-order feature statistics (Gao et al., ACCV 2018).
- :class:`OverhaulFeatureLoss`: margin ReLU + partial L2 on pre-ReLU features (Heo et al., ICCV 2019).
"""
import torch
import torch.distributed as dist
from torch import nn as nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY
from stdsr.errors import FeatureTapError, UnknownModulePathError
from stdsr.losses.distill_loss import attention_map
from stdsr.distill.feature_hooks import resolve_module_path, split_tap, unwrap_network

__all__ = [
    'FeatureTapError', 'OutputDistillLoss', 'FitNetHintLoss', 'AttentionTransferLoss', 'FSPLoss',
    'FeatureStatsDistillLoss', 'OverhaulFeatureLoss', 'find_post_activation_reason', 'fsp_matrix', 'feature_stat_map'
]

_POINTWISE = ('charbonnier', 'l1', 'l2')
_AT_DISTANCES = ('norm', 'mse')
_FSP_RESIZE = ('pool', 'error')
_FSP_ENTRY_REDUCTIONS = ('sum', 'mean')
_STATS = ('mean', 'std', 'abs_mean', 'max_abs')
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Softplus, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid)


# ---------------------------------------------------------------------------------------------------- helpers
def _check_choice(value, choices, option, name):
    if value not in choices:
        raise ValueError(f"{name}: unsupported {option} '{value}'; supported ones are {list(choices)}")


def _feature_pairs(student_feats, teacher_feats, name):
    """[(student, teacher)] from two tensors or two equally long lists; every tensor must be (B, N, C, H, W)."""
    s_list = isinstance(student_feats, (list, tuple))
    t_list = isinstance(teacher_feats, (list, tuple))
    if s_list != t_list:
        raise ValueError(f'{name}: student_layer and teacher_layer must both be single layers or both lists')
    pairs = list(zip(student_feats, teacher_feats)) if s_list else [(student_feats, teacher_feats)]
    if s_list and len(student_feats) != len(teacher_feats):
        raise ValueError(f'{name}: student_layer lists {len(student_feats)} layers but teacher_layer '
                         f'{len(teacher_feats)}; they are paired one to one')
    if not pairs:
        raise ValueError(f'{name}: no layers given')
    for idx, (s, t) in enumerate(pairs):
        if s.dim() != 5 or t.dim() != 5:
            raise ValueError(f'{name}: layer pair {idx} must be (B, N, C, H, W) features, got student '
                             f'{tuple(s.shape)} and teacher {tuple(t.shape)}')
        if s.shape[:2] != t.shape[:2]:
            raise ValueError(f'{name}: layer pair {idx}: student and teacher clips differ in batch or frames: '
                             f'{tuple(s.shape)} vs {tuple(t.shape)}')
    return pairs


def _check_spatial(s, t, idx, name):
    if s.shape[-2:] != t.shape[-2:]:
        raise ValueError(f'{name}: layer pair {idx}: student and teacher features must have the same spatial size, '
                         f'got student {tuple(s.shape)} and teacher {tuple(t.shape)}')


def _widths(channels, key, name):
    """An int or a list of ints (one per layer) -> list of ints."""
    widths = list(channels) if isinstance(channels, (list, tuple)) else [channels]
    if not widths or any(not isinstance(c, int) or c < 1 for c in widths):
        raise ValueError(f'{name}: {key} must be a positive int or a list of them, got {channels!r}')
    return widths


def _layer_widths(student_channels, teacher_channels, name):
    s_widths = _widths(student_channels, 'student_channels', name)
    t_widths = _widths(teacher_channels, 'teacher_channels', name)
    if len(s_widths) != len(t_widths):
        raise ValueError(f'{name}: {len(s_widths)} student layer(s) but {len(t_widths)} teacher layer(s); they '
                         'are paired one to one')
    return s_widths, t_widths


def _frames(feat):
    """(B, N, C, H, W) -> (B*N, C, H, W), the layout 2-D modules expect."""
    return feat.flatten(0, 1)


def _check_width(feat, width, idx, side, name):
    if feat.size(2) != width:
        raise ValueError(f'{name}: layer pair {idx}: built for {side} width {width}, got features '
                         f'{tuple(feat.shape)}')


# ---------------------------------------------------------------------------------------------------- output KD
@LOSS_REGISTRY.register()
class OutputDistillLoss(nn.Module):
    """Student SR frames regress the teacher's SR frames (Hinton-style KD for regression).

    Tap the network outputs with ``student_layer: ''`` and ``teacher_layer: ''``.

    Args:
        loss_weight (float): Loss weight. Default: 1.0.
        criterion (str): 'charbonnier' (sqrt(d^2 + eps), as the pixel loss), 'l1' or 'l2'. Default: 'charbonnier'.
        eps (float): Charbonnier epsilon. Default: 1e-12.
    """

    def __init__(self, loss_weight=1.0, criterion='charbonnier', eps=1e-12):
        super().__init__()
        _check_choice(criterion, _POINTWISE, 'criterion', 'OutputDistillLoss')
        self.loss_weight = loss_weight
        self.criterion = criterion
        self.eps = eps

    def forward(self, student_out, teacher_out, **kwargs):
        (s, t), = _feature_pairs(student_out, teacher_out, 'OutputDistillLoss')
        if s.shape != t.shape:
            raise ValueError(f'OutputDistillLoss: student and teacher outputs must have the same shape, got '
                             f'{tuple(s.shape)} and {tuple(t.shape)} (tap the outputs with layer path \'\')')
        diff = s - t.detach()
        if self.criterion == 'l1':
            loss = diff.abs().mean()
        elif self.criterion == 'l2':
            loss = diff.pow(2).mean()
        else:
            loss = torch.sqrt(diff.pow(2) + self.eps).mean()
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- FitNets
@LOSS_REGISTRY.register()
class FitNetHintLoss(nn.Module):
    """FitNets hint: a learned 1x1 conv maps the student (guided) layer to the teacher (hint) width, then L2.

    Romero et al. minimise 1/2 ||u_h - r(v_g)||^2; we take the mean squared error over all elements so the
    scale does not depend on the patch size. With lists, one regressor per layer pair and the terms are summed.

    Args:
        student_channels (int | list[int]): Student widths (filled in by DistillVSRModel).
        teacher_channels (int | list[int]): Teacher widths (filled in by DistillVSRModel).
        loss_weight (float): Loss weight. Default: 1.0.
    """

    def __init__(self, student_channels, teacher_channels, loss_weight=1.0):
        super().__init__()
        self.student_widths, self.teacher_widths = _layer_widths(student_channels, teacher_channels,
                                                                 'FitNetHintLoss')
        self.loss_weight = loss_weight
        self.regressors = nn.ModuleList(
            nn.Conv2d(c_s, c_t, 1) for c_s, c_t in zip(self.student_widths, self.teacher_widths))

    def forward(self, student_feats, teacher_feats, **kwargs):
        pairs = _feature_pairs(student_feats, teacher_feats, 'FitNetHintLoss')
        if len(pairs) != len(self.regressors):
            raise ValueError(f'FitNetHintLoss was built for {len(self.regressors)} layer pair(s), got {len(pairs)}')
        loss = 0
        for idx, ((s, t), regressor) in enumerate(zip(pairs, self.regressors)):
            _check_spatial(s, t, idx, 'FitNetHintLoss')
            _check_width(s, self.student_widths[idx], idx, 'student', 'FitNetHintLoss')
            _check_width(t, self.teacher_widths[idx], idx, 'teacher', 'FitNetHintLoss')
            hint = regressor(_frames(s)).unflatten(0, s.shape[:2])
            loss = loss + F.mse_loss(hint, t.detach())
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- AT
@LOSS_REGISTRY.register()
class AttentionTransferLoss(nn.Module):
    """Attention transfer: per layer, Q = vec(sum_c |F_c|^p) normalised to unit L2 norm, compared across nets.

    Zagoruyko & Komodakis use sum_j || Q_S^j/||Q_S^j||_2 - Q_T^j/||Q_T^j||_2 ||_p with p = 2 ('norm', default): the
    L2 norm of the difference per map, averaged over the (B, N) maps and summed over layers. 'mse' is the mean of
    the squared differences that their public code uses instead. Widths may differ (channels are summed out).

    Args:
        loss_weight (float): Loss weight (their beta/2). Default: 1.0.
        p (float): Exponent of the attention mapping. Default: 2.
        distance (str): 'norm' or 'mse', see above. Default: 'norm'.
    """

    def __init__(self, loss_weight=1.0, p=2, distance='norm'):
        super().__init__()
        _check_choice(distance, _AT_DISTANCES, 'distance', 'AttentionTransferLoss')
        attention_map(torch.zeros(1, 1, 1), p=p)  # validates p now rather than at the first iteration
        self.loss_weight = loss_weight
        self.p = p
        self.distance = distance

    def forward(self, student_feats, teacher_feats, **kwargs):
        loss = 0
        for idx, (s, t) in enumerate(_feature_pairs(student_feats, teacher_feats, 'AttentionTransferLoss')):
            _check_spatial(s, t, idx, 'AttentionTransferLoss')
            q_s = attention_map(s, p=self.p, normalize='l2').flatten(-2)  # (B, N, H*W)
            q_t = attention_map(t.detach(), p=self.p, normalize='l2').flatten(-2)
            if self.distance == 'norm':
                loss = loss + (q_s - q_t).norm(p=2, dim=-1).mean()
            else:
                loss = loss + (q_s - q_t).pow(2).mean()
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- FSP
def fsp_matrix(feat1, feat2):
    """FSP (Gram) matrix of two same-size layers: G_ij = sum_{x,y} F1_i(x,y) F2_j(x,y) / (h*w).

    (..., C1, H, W) x (..., C2, H, W) -> (..., C1, C2).
    """
    if feat1.shape[-2:] != feat2.shape[-2:]:
        raise ValueError(f'fsp_matrix: spatial sizes differ: {tuple(feat1.shape)} vs {tuple(feat2.shape)}')
    h, w = feat1.shape[-2:]
    return torch.einsum('...ihw,...jhw->...ij', feat1, feat2) / (h * w)


def _match_sizes(feat1, feat2, resize, where):
    """Average-pool the larger of two (B*N, C, H, W) maps onto the smaller when ``resize='pool'``."""
    size1, size2 = tuple(feat1.shape[-2:]), tuple(feat2.shape[-2:])
    if size1 == size2:
        return feat1, feat2
    if resize == 'pool':
        big_first = size1[0] >= size2[0] and size1[1] >= size2[1]
        big_last = size2[0] >= size1[0] and size2[1] >= size1[1]
        big, small = (size1, size2) if big_first else (size2, size1)
        if (big_first or big_last) and big[0] % small[0] == 0 and big[1] % small[1] == 0:
            kernel = (big[0] // small[0], big[1] // small[1])
            if big_first:
                return F.avg_pool2d(feat1, kernel), feat2
            return feat1, F.avg_pool2d(feat2, kernel)
        raise ValueError(f'FSPLoss: {where}: layers of sizes {size1} and {size2} cannot be pooled onto each other '
                         '(one must be an integer multiple of the other in both dimensions)')
    raise ValueError(f"FSPLoss: {where}: the two layers of a pair must have the same spatial size, got {size1} and "
                     f"{size2} (set 'resize: pool' to average-pool the larger one)")


@LOSS_REGISTRY.register()
class FSPLoss(nn.Module):
    """FSP: the student's "flow" matrices between two layers regress the teacher's (Yim et al.).

    Layers come in pairs: ``student_layer: [a, b]``, ``teacher_layer: [c, d]`` (more pairs: [a, b, a2, b2, ...]).
    The student and teacher matrices must have the same shape, so student width(a) x width(b) must equal
    teacher width(c) x width(d); widths may differ per layer only if the products' shapes match. The loss of a
    pair is ||G_S - G_T||_2^2 (squared Frobenius norm, 'sum'; or the mean over entries with 'mean'), averaged over
    the (B, N) frames and summed over pairs, as in the paper with equal pair weights.

    Args:
        student_channels (list[int] | None): Student widths, filled in by DistillVSRModel; with the teacher's they
            let a shape mismatch fail at start-up instead of at the first iteration.
        teacher_channels (list[int] | None): Teacher widths (see above).
        loss_weight (float): Loss weight. Default: 1.0.
        resize (str): When the two layers of a pair differ in size: 'pool' average-pools the larger onto the
            smaller (integer ratios only), 'error' refuses. Default: 'pool'.
        entry_reduction (str): 'sum' (the paper's squared Frobenius norm) or 'mean' over matrix entries.
            Default: 'sum'.
    """

    def __init__(self, student_channels=None, teacher_channels=None, loss_weight=1.0, resize='pool',
                 entry_reduction='sum'):
        super().__init__()
        _check_choice(resize, _FSP_RESIZE, 'resize', 'FSPLoss')
        _check_choice(entry_reduction, _FSP_ENTRY_REDUCTIONS, 'entry_reduction', 'FSPLoss')
        self.loss_weight = loss_weight
        self.resize = resize
        self.entry_reduction = entry_reduction
        if student_channels is not None and teacher_channels is not None:
            if not isinstance(student_channels, (list, tuple)) or not isinstance(teacher_channels, (list, tuple)):
                raise ValueError('FSPLoss needs layer pairs: student_layer: [a, b] and teacher_layer: [c, d]')
            self._check_shapes(list(student_channels), list(teacher_channels))

    @staticmethod
    def _check_shapes(s_widths, t_widths):
        if len(s_widths) != len(t_widths) or len(s_widths) % 2 or not s_widths:
            raise ValueError(f'FSPLoss needs the same even number of student and teacher layers (pairs [a, b, ...]), '
                             f'got {len(s_widths)} student and {len(t_widths)} teacher layers')
        for k in range(0, len(s_widths), 2):
            s_shape, t_shape = tuple(s_widths[k:k + 2]), tuple(t_widths[k:k + 2])
            if s_shape != t_shape:
                raise ValueError(f'FSPLoss: pair {k // 2}: the student FSP matrix is {s_shape[0]}x{s_shape[1]} but '
                                 f"the teacher's is {t_shape[0]}x{t_shape[1]}; choose layers whose widths give "
                                 'matrices of the same shape')

    def forward(self, student_feats, teacher_feats, **kwargs):
        if not isinstance(student_feats, (list, tuple)) or not isinstance(teacher_feats, (list, tuple)):
            raise ValueError('FSPLoss needs layer pairs: student_layer: [a, b] and teacher_layer: [c, d]')
        pairs = _feature_pairs(student_feats, teacher_feats, 'FSPLoss')
        self._check_shapes([s.size(2) for s, _ in pairs], [t.size(2) for _, t in pairs])
        loss = 0
        for k in range(0, len(pairs), 2):
            (s1, t1), (s2, t2) = pairs[k], pairs[k + 1]
            g_s = fsp_matrix(*_match_sizes(_frames(s1), _frames(s2), self.resize, f'student pair {k // 2}'))
            g_t = fsp_matrix(*_match_sizes(_frames(t1.detach()), _frames(t2.detach()), self.resize,
                                           f'teacher pair {k // 2}'))
            sq = (g_s - g_t).pow(2)
            per_frame = sq.sum(dim=(-2, -1)) if self.entry_reduction == 'sum' else sq.mean(dim=(-2, -1))
            loss = loss + per_frame.mean()
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- Gao et al.
def feature_stat_map(feat, stat):
    """A statistic of (..., C, H, W) over channels at every position -> (..., H, W)."""
    _check_choice(stat, _STATS, 'stat', 'feature_stat_map')
    if stat == 'mean':
        return feat.mean(dim=-3)
    if stat == 'std':
        return feat.std(dim=-3, unbiased=False)
    if stat == 'abs_mean':
        return feat.abs().mean(dim=-3)
    return feat.abs().amax(dim=-3)


@LOSS_REGISTRY.register()
class FeatureStatsDistillLoss(nn.Module):
    """First-order feature statistics (Gao et al., "Image Super-Resolution Using Knowledge Distillation", ACCV 2018).

    The student does not copy the teacher's features (widths differ) but their first-order statistics: per layer
    and per frame, maps over the spatial positions of a statistic taken across channels (channel mean by default,
    optionally the channel std, mean |F| or max |F|). Each map of the student regresses the teacher's with L1
    ('l1', as in SR training) or L2; terms are summed over statistics and layers.

    Args:
        loss_weight (float): Loss weight. Default: 1.0.
        stats (list[str]): Any of 'mean', 'std', 'abs_mean', 'max_abs'. Default: ['mean'].
        criterion (str): 'l1' or 'l2' (mean over positions, frames and clips). Default: 'l1'.
    """

    def __init__(self, loss_weight=1.0, stats=('mean', ), criterion='l1'):
        super().__init__()
        stats = [stats] if isinstance(stats, str) else list(stats)
        if not stats or len(set(stats)) != len(stats):
            raise ValueError(f'FeatureStatsDistillLoss: stats must list distinct statistics, got {stats}')
        for stat in stats:
            _check_choice(stat, _STATS, 'stat', 'FeatureStatsDistillLoss')
        _check_choice(criterion, ('l1', 'l2'), 'criterion', 'FeatureStatsDistillLoss')
        self.loss_weight = loss_weight
        self.stats = stats
        self.criterion = criterion

    def forward(self, student_feats, teacher_feats, **kwargs):
        loss = 0
        for idx, (s, t) in enumerate(_feature_pairs(student_feats, teacher_feats, 'FeatureStatsDistillLoss')):
            _check_spatial(s, t, idx, 'FeatureStatsDistillLoss')
            for stat in self.stats:
                diff = feature_stat_map(s, stat) - feature_stat_map(t.detach(), stat)
                loss = loss + (diff.abs().mean() if self.criterion == 'l1' else diff.pow(2).mean())
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- overhaul
def find_post_activation_reason(net, layer, run_forward):
    """Why the output of ``layer`` in ``net`` is not a pre-activation feature, or None when it looks like one.

    ``run_forward`` is called once (without gradients) to run ``net``. Reasons: the layer is an activation module;
    it is not called; its output is modified in place after the layer returns (e.g. ``LeakyReLU(inplace=True)``
    right after a conv, as in EDVR's ``conv_hr``), so a hook sees post-activation values; or its output is never
    negative.
    """
    net = unwrap_network(net)
    modules = dict(net.named_modules())
    path, side = split_tap(layer)
    try:
        name = resolve_module_path(modules, path)
    except UnknownModulePathError:
        return f"it is not a module of {type(net).__name__}"
    module = modules[name]
    if isinstance(module, _ACTIVATIONS):
        return f'it is an activation module ({type(module).__name__})'
    seen = []

    def hook(mod, inputs, output=None):
        value = inputs if side == 'input' else output
        if isinstance(value, (tuple, list)):
            value = value[0]
        seen.append((value, value._version))

    handle = module.register_forward_pre_hook(hook) if side == 'input' else module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            run_forward()
    finally:
        handle.remove()
    if not seen:
        return 'it is not called in a forward pass'
    for output, version in seen:
        if output._version != version:
            return ('its output is modified in place after the layer returns (an inplace activation such as '
                    'LeakyReLU(inplace=True), or an inplace add), so hooks see the modified, not the layer\'s, values')
        if bool((output >= 0).all()):
            return f'its {side} is never negative (it looks post-ReLU)'
    return None


@LOSS_REGISTRY.register()
class OverhaulFeatureLoss(nn.Module):
    """Overhaul of feature distillation (Heo et al., ICCV 2019) on pre-ReLU features.

    - Teacher transform: margin ReLU max(T, m_c), with m_c = E[T_c | T_c < 0] the expectation of channel c's
      negative responses. Heo et al. derive it from the teacher's BatchNorm statistics; SR networks have no BN, so
      we estimate it directly from the teacher's features: running per-channel sums and counts of the negative
      responses (buffers, saved in training states; all-reduced across ranks under DDP), updated in training
      mode. The teacher is frozen, so this cumulative mean converges to the exact expectation.
    - Student transform: 1x1 conv (+ BatchNorm when ``bn``) to the teacher width.
    - Distance: partial L2, sum of (S - T)^2 except where S <= T and T <= 0 (the teacher's response is negative
      and the student is already below it, which a ReLU would not tell apart). We average over elements (the paper
      sums and divides by the batch size and 1000) so the scale is independent of the patch size.

    The method needs pre-ReLU features: a tap whose output is all >= 0 fails at the first forward, and
    :meth:`check_taps` finds post-activation taps by running the networks once (see
    :func:`find_post_activation_reason`).

    Args:
        student_channels (int | list[int]): Student widths (filled in by DistillVSRModel).
        teacher_channels (int | list[int]): Teacher widths (filled in by DistillVSRModel).
        loss_weight (float): Loss weight. Default: 1.0.
        bn (bool): BatchNorm after the student's 1x1 conv, as in the paper. Default: True.
    """

    def __init__(self, student_channels, teacher_channels, loss_weight=1.0, bn=True):
        super().__init__()
        self.student_widths, self.teacher_widths = _layer_widths(student_channels, teacher_channels,
                                                                 'OverhaulFeatureLoss')
        self.loss_weight = loss_weight
        self.bn = bool(bn)
        self.regressors = nn.ModuleList()
        for idx, (c_s, c_t) in enumerate(zip(self.student_widths, self.teacher_widths)):
            if self.bn:
                self.regressors.append(nn.Sequential(nn.Conv2d(c_s, c_t, 1, bias=False), nn.BatchNorm2d(c_t)))
            else:
                self.regressors.append(nn.Conv2d(c_s, c_t, 1))
            self.register_buffer(f'neg_sum_{idx}', torch.zeros(c_t, dtype=torch.float64))
            self.register_buffer(f'neg_count_{idx}', torch.zeros(c_t, dtype=torch.float64))
        self.tap_names = None  # [(student description, teacher description)] once check_taps has run
        self._checked_sign = False

    def margin(self, idx):
        """Current margin m_c of layer pair ``idx`` (0 for channels with no negative response seen yet)."""
        neg_sum, neg_count = getattr(self, f'neg_sum_{idx}'), getattr(self, f'neg_count_{idx}')
        return torch.where(neg_count > 0, neg_sum / neg_count.clamp(min=1), torch.zeros_like(neg_sum))

    @torch.no_grad()
    def _update_margin(self, idx, teacher):
        dims = (0, 1, 3, 4)
        stats = torch.stack([teacher.clamp(max=0).sum(dim=dims), (teacher < 0).sum(dim=dims)]).double()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        getattr(self, f'neg_sum_{idx}').add_(stats[0])
        getattr(self, f'neg_count_{idx}').add_(stats[1])

    def check_taps(self, student_net, teacher_net, student_layer, teacher_layer, run_student, run_teacher,
                   student_label='network_g', teacher_label='network_t'):
        """Raise FeatureTapError naming the layer and network when a tap is not a pre-activation feature.

        ``run_student`` / ``run_teacher`` run one forward of the respective network (e.g. on a random clip).
        """
        s_layers = list(student_layer) if isinstance(student_layer, (list, tuple)) else [student_layer]
        t_layers = list(teacher_layer) if isinstance(teacher_layer, (list, tuple)) else [teacher_layer]
        for net, layers, run, label in ((student_net, s_layers, run_student, student_label),
                                        (teacher_net, t_layers, run_teacher, teacher_label)):
            for layer in layers:
                reason = find_post_activation_reason(net, layer, run)
                if reason is not None:
                    raise FeatureTapError(
                        f"OverhaulFeatureLoss needs pre-ReLU features, but layer '{layer}' of {label} "
                        f'({type(unwrap_network(net)).__name__}) cannot give them: {reason}. Tap the layer before '
                        'the activation whose output is not modified in place (for EDVR: upconv2 or reconstruction).')
        arch_s, arch_t = type(unwrap_network(student_net)).__name__, type(unwrap_network(teacher_net)).__name__
        self.tap_names = [(f"'{s}' of {student_label} ({arch_s})", f"'{t}' of {teacher_label} ({arch_t})")
                          for s, t in zip(s_layers, t_layers)]

    def _check_sign(self, idx, teacher):
        if bool((teacher >= 0).all()):
            where = (f'teacher layer {self.tap_names[idx][1]}' if self.tap_names else
                     f'the teacher layer of pair {idx} (teacher_layer option)')
            raise FeatureTapError(f'OverhaulFeatureLoss needs pre-ReLU teacher features, but {where} gave only '
                                  'non-negative values (it looks post-ReLU): tap the layer before the activation')

    def forward(self, student_feats, teacher_feats, **kwargs):
        pairs = _feature_pairs(student_feats, teacher_feats, 'OverhaulFeatureLoss')
        if len(pairs) != len(self.regressors):
            raise ValueError(f'OverhaulFeatureLoss was built for {len(self.regressors)} layer pair(s), '
                             f'got {len(pairs)}')
        loss = 0
        for idx, ((s, t), regressor) in enumerate(zip(pairs, self.regressors)):
            _check_spatial(s, t, idx, 'OverhaulFeatureLoss')
            _check_width(s, self.student_widths[idx], idx, 'student', 'OverhaulFeatureLoss')
            _check_width(t, self.teacher_widths[idx], idx, 'teacher', 'OverhaulFeatureLoss')
            t = t.detach()
            if not self._checked_sign:
                self._check_sign(idx, t)
            if self.training:
                self._update_margin(idx, t)
            target = torch.max(t, self.margin(idx).to(t.dtype)[:, None, None])
            pred = regressor(_frames(s)).unflatten(0, s.shape[:2])
            keep = ~((pred <= target) & (target <= 0))
            loss = loss + ((pred - target).pow(2) * keep).mean()
        self._checked_sign = True
        return self.loss_weight * loss
