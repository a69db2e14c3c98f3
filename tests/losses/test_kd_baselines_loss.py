"""Distillation baselines (stdsr/losses/kd_baselines_loss.py) and the ablation/baseline option files."""
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn as nn

import stdsr  # noqa: F401  (patches torchvision and registers stdsr archs/losses)
from basicsr.archs import build_network
from basicsr.archs.edvr_arch import EDVR
from basicsr.losses import build_loss
from basicsr.models import build_model
from basicsr.utils.registry import LOSS_REGISTRY
from stdsr.losses import kd_baselines_loss as kd
from stdsr.losses.kd_baselines_loss import (AttentionTransferLoss, FeatureStatsDistillLoss, FeatureTapError,
                                            FitNetHintLoss, FSPLoss, OutputDistillLoss, OverhaulFeatureLoss)
from stdsr.archs.clip_runner import run_clip
from stdsr.config.distill import check_distill_options
from stdsr.models.distill_vsr_model import DistillVSRModel
from stdsr.runtime.dist import init_dist_from_options
from stdsr.distill.feature_hooks import FeatureRecorder, stack_frames
from stdsr.config.options import load_yaml, parse_options, validate_options

REPO = Path(__file__).resolve().parents[2]
OPTION_DIRS = [REPO / 'options' / 'train' / 'STD' / 'ablations', REPO / 'options' / 'train' / 'STD' / 'baselines']
BASELINE_NAMES = ['OutputDistillLoss', 'FitNetHintLoss', 'AttentionTransferLoss', 'FSPLoss',
                  'FeatureStatsDistillLoss', 'OverhaulFeatureLoss']


def option_files():
    files = sorted(p for d in OPTION_DIRS for p in d.rglob('*.yml') if not p.name.startswith('plan_'))
    assert len(files) == 26, [str(p) for p in files]
    return files


def plan_files():
    return sorted(p for d in OPTION_DIRS for p in d.glob('plan_*.yml'))


def grads_ok(student, teacher):
    return student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None


# ------------------------------------------------------------------------------------------------ registry
def test_registered_under_own_names():
    for name in BASELINE_NAMES:
        cls = LOSS_REGISTRY.get(name)
        assert cls.__module__ == 'stdsr.losses.kd_baselines_loss'
    loss = build_loss({'type': 'FitNetHintLoss', 'student_channels': 4, 'teacher_channels': 6, 'loss_weight': 0.5})
    assert isinstance(loss, FitNetHintLoss) and loss.regressors[0].weight.shape == (6, 4, 1, 1)


# ------------------------------------------------------------------------------------------------ output KD
def test_output_distill_hand_computed_and_gradients():
    s = torch.tensor([0.5, 0.0, 1.0, 0.25]).reshape(1, 1, 1, 2, 2).requires_grad_()
    t = torch.tensor([0.0, 0.0, 0.5, 1.25]).reshape(1, 1, 1, 2, 2).requires_grad_()
    assert OutputDistillLoss(criterion='l1')(s, t).item() == pytest.approx((0.5 + 0 + 0.5 + 1.0) / 4)
    assert OutputDistillLoss(criterion='l2', loss_weight=2)(s, t).item() == pytest.approx(2 * (0.25 + 0.25 + 1) / 4)
    charb = OutputDistillLoss(eps=1e-2)(s, t)
    expected = sum(math.sqrt(d * d + 1e-2) for d in (0.5, 0.0, 0.5, 1.0)) / 4
    assert charb.item() == pytest.approx(expected, rel=1e-6)
    charb.backward()
    assert grads_ok(s, t)
    with pytest.raises(ValueError, match='same shape'):
        OutputDistillLoss()(torch.zeros(1, 1, 3, 4, 4), torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match='criterion'):
        OutputDistillLoss(criterion='huber')


# ------------------------------------------------------------------------------------------------ FitNets
def test_fitnet_hand_computed_lists_and_gradients():
    loss = FitNetHintLoss(student_channels=[1, 2], teacher_channels=[2, 1], loss_weight=1.0)
    with torch.no_grad():
        loss.regressors[0].weight.copy_(torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
        loss.regressors[0].bias.zero_()
        loss.regressors[1].weight.copy_(torch.tensor([1.0, -1.0]).reshape(1, 2, 1, 1))
        loss.regressors[1].bias.fill_(0.5)
    s0 = torch.tensor([1.0, 2.0]).reshape(1, 1, 1, 1, 2).requires_grad_()
    t0 = torch.tensor([[1.0, 2.0], [0.0, 4.0]]).reshape(1, 1, 2, 1, 2)
    s1 = torch.tensor([[3.0], [1.0]]).reshape(1, 1, 2, 1, 1).requires_grad_()
    t1 = torch.tensor([2.0]).reshape(1, 1, 1, 1, 1)
    # layer 0: hint = [s, 2s] = [[1, 2], [2, 4]] vs t0 -> squared errors 0, 0, 4, 0 -> mean 1
    # layer 1: hint = 3 - 1 + 0.5 = 2.5 vs 2 -> 0.25
    value = loss([s0, s1], [t0, t1])
    assert value.item() == pytest.approx(1.25)
    value.backward()
    assert s0.grad.abs().sum() > 0 and s1.grad.abs().sum() > 0
    assert all(p.grad is not None for p in loss.parameters())
    with pytest.raises(ValueError, match='width 1'):
        loss([torch.zeros(1, 1, 3, 1, 2), s1], [t0, t1])
    with pytest.raises(ValueError, match='same spatial size'):
        FitNetHintLoss(2, 2)(torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 1, 2, 8, 8))


# ------------------------------------------------------------------------------------------------ AT
def test_attention_transfer_hand_computed_and_gradients():
    # (C=2, H=1, W=2) maps: student sum_c F^2 = [1, 0] -> q_s = [1, 0]; teacher [3, 4] -> q_t = [0.6, 0.8]
    s = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]]).reshape(1, 1, 2, 1, 2).requires_grad_()
    t = torch.tensor([[[1.0, 2.0]], [[math.sqrt(2.0), 0.0]]]).reshape(1, 1, 2, 1, 2).requires_grad_()
    norm = math.sqrt(0.4**2 + 0.8**2)
    value = AttentionTransferLoss()(s, t)
    assert value.item() == pytest.approx(norm, rel=1e-5)
    mse = AttentionTransferLoss(distance='mse', loss_weight=3.0)(s, t)
    assert mse.item() == pytest.approx(3.0 * (0.4**2 + 0.8**2) / 2, rel=1e-5)
    # several layers are summed; widths may differ
    two = AttentionTransferLoss()([s, torch.ones(1, 1, 3, 2, 2)], [t, torch.ones(1, 1, 5, 2, 2)])
    assert two.item() == pytest.approx(norm, rel=1e-5)
    s, t = torch.randn(2, 3, 4, 5, 5, requires_grad=True), torch.randn(2, 3, 6, 5, 5, requires_grad=True)
    AttentionTransferLoss()(s, t).backward()  # (the hand case above sits where the gradient vanishes)
    assert grads_ok(s, t)


# ------------------------------------------------------------------------------------------------ FSP
def test_fsp_hand_computed_pooling_and_gradients():
    a = torch.tensor([[[1.0, 2.0]]]).reshape(1, 1, 1, 1, 2)  # C=1
    b = torch.tensor([[[1.0, 0.0]], [[3.0, 1.0]]]).reshape(1, 1, 2, 1, 2)  # C=2
    g = kd.fsp_matrix(a[0, 0], b[0, 0])  # (1, 2): [(1*1 + 2*0)/2, (1*3 + 2*1)/2]
    torch.testing.assert_close(g, torch.tensor([[0.5, 2.5]]))
    s1 = a.clone().requires_grad_()
    loss = FSPLoss(student_channels=[1, 2], teacher_channels=[1, 2])
    value = loss([s1, b], [torch.zeros_like(a), b])  # teacher matrix is 0
    assert value.item() == pytest.approx(0.5**2 + 2.5**2)
    value.backward()
    assert s1.grad is not None and s1.grad.abs().sum() > 0
    mean = FSPLoss(entry_reduction='mean')([a, b], [torch.zeros_like(a), b])
    assert mean.item() == pytest.approx((0.5**2 + 2.5**2) / 2)
    # a layer twice as large is average-pooled onto the smaller one
    big = torch.arange(16, dtype=torch.float32).reshape(1, 1, 1, 4, 4)
    small = torch.ones(1, 1, 1, 2, 2)
    pooled = torch.nn.functional.avg_pool2d(big[0], 2)
    expected = kd.fsp_matrix(pooled, small[0]).pow(2).sum()
    assert FSPLoss()([big, small], [torch.zeros_like(small), small]).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="same spatial size.*resize: pool"):
        FSPLoss(resize='error')([big, small], [big, small])
    with pytest.raises(ValueError, match='integer multiple'):
        FSPLoss()([torch.ones(1, 1, 1, 3, 3), small], [torch.ones(1, 1, 1, 3, 3), small])


def test_fsp_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r'student FSP matrix is 16x64 but the teacher.s is 32x64'):
        FSPLoss(student_channels=[16, 64], teacher_channels=[32, 64])
    with pytest.raises(ValueError, match='layer pairs'):
        FSPLoss(student_channels=16, teacher_channels=16)
    with pytest.raises(ValueError, match='even number'):
        FSPLoss(student_channels=[4, 4, 4], teacher_channels=[4, 4, 4])
    with pytest.raises(ValueError, match='student FSP matrix is 2x3'):
        FSPLoss()([torch.ones(1, 1, 2, 2, 2), torch.ones(1, 1, 3, 2, 2)],
                  [torch.ones(1, 1, 4, 2, 2), torch.ones(1, 1, 3, 2, 2)])
    with pytest.raises(ValueError, match='layer pairs'):
        FSPLoss()(torch.ones(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2))


# ------------------------------------------------------------------------------------------------ Gao et al.
def test_feature_stats_hand_computed_and_gradients():
    s = torch.tensor([[[1.0, 3.0]], [[3.0, 3.0]]]).reshape(1, 1, 2, 1, 2).requires_grad_()  # mean [2, 3], std [1, 0]
    t = torch.tensor([[[0.0, 6.0]], [[0.0, 0.0]], [[3.0, 0.0]]]).reshape(1, 1, 3, 1, 2).requires_grad_()  # mean [1, 2]
    value = FeatureStatsDistillLoss()(s, t)
    assert value.item() == pytest.approx((1 + 1) / 2)
    t_std = [math.sqrt(2.0), math.sqrt(8.0)]
    both = FeatureStatsDistillLoss(stats=['mean', 'std'], criterion='l2')(s, t)
    assert both.item() == pytest.approx((1 + 1) / 2 + ((1 - t_std[0])**2 + t_std[1]**2) / 2, rel=1e-5)
    maxabs = FeatureStatsDistillLoss(stats='max_abs')(s, t)
    assert maxabs.item() == pytest.approx((0 + 3) / 2)
    value.backward()
    assert grads_ok(s, t)
    with pytest.raises(ValueError, match='median'):
        FeatureStatsDistillLoss(stats=['median'])


# ------------------------------------------------------------------------------------------------ overhaul
def identity_overhaul(channels=1):
    loss = OverhaulFeatureLoss(channels, channels, bn=False)
    with torch.no_grad():
        loss.regressors[0].weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
        loss.regressors[0].bias.zero_()
    return loss


def test_overhaul_margin_partial_l2_hand_computed():
    loss = identity_overhaul()
    t = torch.tensor([-1.0, -3.0, 2.0, 4.0]).reshape(1, 1, 1, 2, 2)
    s = torch.tensor([-5.0, -1.0, 2.0, 3.0]).reshape(1, 1, 1, 2, 2).requires_grad_()
    # margin = mean of the negatives = -2 -> target [-1, -2, 2, 4]
    # position 0: s=-5 <= target=-1 <= 0 -> skipped; 1: (-1 + 2)^2 = 1; 2: 0; 3: 1 -> mean 2/4
    value = loss(s, t)
    assert loss.margin(0).item() == pytest.approx(-2.0)
    assert value.item() == pytest.approx(0.5)
    value.backward()
    assert s.grad is not None and s.grad[0, 0, 0, 0, 0] == 0 and s.grad.abs().sum() > 0
    assert all(p.grad is not None for p in loss.parameters())
    # running estimate over everything seen: negatives -1, -3, -8 -> -4
    loss(s.detach(), torch.tensor([-8.0, 1.0, 1.0, 1.0]).reshape(1, 1, 1, 2, 2))
    assert loss.margin(0).item() == pytest.approx(-4.0)
    loss.eval()
    loss(s.detach(), torch.full((1, 1, 1, 2, 2), -100.0))
    assert loss.margin(0).item() == pytest.approx(-4.0), 'eval mode must not update the margin'
    # the estimate travels with the loss state (training states save it)
    restored = identity_overhaul()
    restored.load_state_dict(loss.state_dict())
    assert restored.margin(0).item() == pytest.approx(-4.0)


def test_overhaul_with_bn_regressor_trains_and_teacher_gets_no_grad():
    loss = OverhaulFeatureLoss([3], [5])
    s = torch.randn(2, 2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 2, 5, 4, 4, requires_grad=True)
    loss([s], [t]).backward()
    assert grads_ok(s, t)
    assert isinstance(loss.regressors[0][1], nn.BatchNorm2d)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())


def test_overhaul_refuses_post_relu_features():
    with pytest.raises(FeatureTapError, match='pre-ReLU.*non-negative'):
        identity_overhaul(2)(torch.randn(1, 1, 2, 3, 3), torch.rand(1, 1, 2, 3, 3))


def test_overhaul_check_taps_names_layer_and_network():
    torch.manual_seed(0)
    net = EDVR(num_feat=8, num_frame=3, deformable_groups=1, num_extract_block=1, num_reconstruct_block=1,
               with_tsa=False)
    x = torch.rand(1, 3, 3, 8, 8)

    def run():
        return net(x)

    loss = OverhaulFeatureLoss(256, 256)
    # EDVR overwrites conv_hr's output with an inplace LeakyReLU: the hook would see post-activation values
    with pytest.raises(FeatureTapError, match=r"'conv_hr' of network_t \(EDVR\).*modified in place"):
        loss.check_taps(net, net, 'upconv2', 'conv_hr', run, run)
    with pytest.raises(FeatureTapError, match=r"'lrelu' of network_g \(EDVR\).*activation module"):
        loss.check_taps(net, net, 'lrelu', 'upconv2', run, run)
    with pytest.raises(FeatureTapError, match=r"'' of network_t.*never negative"):
        net.conv_last.bias.data.fill_(10.0)  # an SR output that is all >= 0
        loss.check_taps(net, net, 'upconv2', '', run, run)
    loss.check_taps(net, net, 'upconv2', 'upconv2', run, run)
    assert loss.tap_names == [("'upconv2' of network_g (EDVR)", "'upconv2' of network_t (EDVR)")]
    with pytest.raises(FeatureTapError, match=r"teacher layer 'upconv2' of network_t \(EDVR\)"):
        loss(torch.randn(1, 1, 256, 2, 2), torch.rand(1, 1, 256, 2, 2))


# ------------------------------------------------------------------------------------------------ option files
def test_every_ablation_and_baseline_file_validates():
    for path in option_files():
        opt = load_yaml(str(path))
        validate_options(opt, is_train=True, source=str(path))
        assert opt['model_type'] == 'DistillVSRModel', path
        check_distill_options(opt)
        text = path.read_text()
        assert all(len(line) <= 120 for line in text.splitlines()), path


def base_file(path):
    if path.parent.name == 'demo':
        return REPO / 'options' / 'train' / 'STD' / 'demo' / 'train_EDVRS_STD_demo.yml'
    return REPO / 'options' / 'train' / 'STD' / 'train_EDVRS_STD_x4_Vimeo90K.yml'


def test_files_share_data_networks_and_budget_with_their_std_base():
    """Equal budgets: only the name and the distill section may differ from the STD file they derive from."""
    names = set()
    for path in option_files():
        opt, base = load_yaml(str(path)), load_yaml(str(base_file(path)))
        for key in set(opt) | set(base):
            if key not in ('name', 'distill'):
                assert opt.get(key) == base.get(key), f'{path}: section {key} differs from {base_file(path)}'
        names.add(opt['name'])
    assert len(names) == len(option_files()), 'experiment names must be unique'


def test_plans_name_existing_files():
    plans = plan_files()
    assert len(plans) == 4
    for plan in plans:
        content = yaml.safe_load(plan.read_text())
        files = [r['opt'] for r in content['runs']] + [content['baseline']]
        for rel in files:
            assert (REPO / rel).is_file(), f'{plan}: {rel} does not exist'


def probe(net_opt, layers, num_frames=2, size=16):
    """Per-frame features (1, num_frames, C, H, W) of ``layers`` for a random clip, and a forward closure."""
    torch.manual_seed(0)
    net = build_network(dict(net_opt))
    lq = torch.rand(1, num_frames, 3, size, size)

    def run():
        return run_clip(net, lq, 'sliding', net_opt['num_frame'])

    rec = FeatureRecorder(net, layers)
    with torch.no_grad():
        run()
    feats = {layer: stack_frames(rec.records[layer], 1, num_frames) for layer in layers}
    rec.remove()
    return net, run, feats


@pytest.mark.parametrize('size', ['demo', 'full'])
def test_every_distill_section_builds_and_runs_on_its_networks(size):
    """Layers exist, widths and FSP shapes match, Overhaul taps are pre-activation: for every file of this size."""
    files = [p for p in option_files() if (p.parent.name == 'demo') == (size == 'demo')]
    opts = [load_yaml(str(p)) for p in files]
    terms = []
    for path, opt in zip(files, opts):
        model = SimpleNamespace(distill_opt=opt['distill'])
        terms += [(path, *term) for term in DistillVSRModel._term_options(model)]
    layers_s = sorted({lay for _, _, s, _ in terms for lay in ([s] if isinstance(s, str) else s)})
    layers_t = sorted({lay for _, _, _, t in terms for lay in ([t] if isinstance(t, str) else t)})
    net_s, run_s, feats_s = probe(opts[0]['network_g'], layers_s)
    net_t, run_t, feats_t = probe(opts[0]['network_t'], layers_t)
    widths_s = {k: v.shape[2] for k, v in feats_s.items()}
    widths_t = {k: v.shape[2] for k, v in feats_t.items()}
    for path, (name, loss_opt), s_layer, t_layer in terms:
        loss_opt = DistillVSRModel._fill_channels(loss_opt, s_layer, t_layer, widths_s, widths_t)
        loss, _ = DistillVSRModel.build_term_loss(loss_opt)  # as the model builds it (loss_share included)
        if isinstance(loss, OverhaulFeatureLoss):
            loss.check_taps(net_s, net_t, s_layer, t_layer, run_s, run_t)
        pick = (lambda feats, layer: feats[layer] if isinstance(layer, str) else [feats[x] for x in layer])
        value = loss(pick(feats_s, s_layer), pick(feats_t, t_layer))
        assert value.dim() == 0 and torch.isfinite(value), f'{path}: {name}'


# ------------------------------------------------------------------------------------------------ one model step
TINY_NET = dict(type='EDVR', num_in_ch=3, num_out_ch=3, num_frame=3, deformable_groups=1, num_extract_block=1,
                num_reconstruct_block=1)


@pytest.mark.slow
def test_one_distill_vsr_model_step_with_every_baseline(tmp_path):
    torch.manual_seed(0)
    teacher_opt = dict(TINY_NET, num_feat=12, with_tsa=True)
    teacher = build_network(dict(teacher_opt))
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'params': teacher.state_dict()}, ckpt)
    losses = {
        'out': {'type': 'OutputDistillLoss', 'student_layer': '', 'teacher_layer': '', 'criterion': 'l1'},
        'fitnet': {'type': 'FitNetHintLoss', 'student_layer': 'reconstruction', 'teacher_layer': 'reconstruction'},
        'at': {'type': 'AttentionTransferLoss', 'student_layer': ['fusion', 'reconstruction', 'conv_hr'],
               'teacher_layer': ['fusion', 'reconstruction', 'conv_hr']},
        'fsp': {'type': 'FSPLoss', 'student_layer': ['upconv2', 'conv_hr'], 'teacher_layer': ['upconv2', 'conv_hr'],
                'loss_weight': 1e-3},
        'stats': {'type': 'FeatureStatsDistillLoss', 'student_layer': ['reconstruction', 'conv_hr'],
                  'teacher_layer': ['reconstruction', 'conv_hr'], 'stats': ['mean', 'std']},
        'overhaul': {'type': 'OverhaulFeatureLoss', 'student_layer': 'upconv2', 'teacher_layer': 'upconv2'},
        'sd_lr': {'type': 'SpaceDistillLoss', 'loss_weight': 1e-3},  # F^LR: the default layers below
        'td_lr': {'type': 'TimeDistillLoss', 'hidden_channels': 4},
    }
    opt = {
        'name': 'kd_step', 'model_type': 'DistillVSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'unused', 'type': 'PairedClipDataset', 'dataroot_gt': 'none',
                               'dataroot_lq': 'none', 'meta_info_file': 'none', 'io_backend': {'type': 'disk'},
                               'num_frame': 3, 'gt_size': 32, 'batch_size_per_gpu': 1}},
        'network_g': dict(TINY_NET, num_feat=8, with_tsa=False), 'network_t': teacher_opt,
        'path': {'pretrain_network_t': str(ckpt), 'experiments_root': str(tmp_path / 'exp')},
        'distill': {'student_layer': 'reconstruction', 'teacher_layer': 'reconstruction', 'losses': losses},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 1},
    }
    opt_path = tmp_path / 'kd.yml'
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    parsed, _ = parse_options(['-opt', str(opt_path)], is_train=True, root_path=str(tmp_path))
    init_dist_from_options(parsed, 'none')
    model = build_model(parsed)
    terms = model.distill_terms
    assert terms['fitnet'].loss.regressors[0].weight.shape == (12, 8, 1, 1)  # widths from the start-up probe
    assert terms['overhaul'].loss.regressors[0][0].weight.shape == (256, 256, 1, 1)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    teacher_before = {k: v.clone() for k, v in model.net_t.state_dict().items()}
    extra = {name: [p.clone() for p in term.parameters()] for name, term in terms.items()}
    model.feed_data({'lq': torch.rand(1, 3, 3, 8, 8), 'gt': torch.rand(1, 3, 3, 32, 32)})
    model.optimize_parameters(1)
    for name in losses:
        assert math.isfinite(model.log_dict[f'l_{name}']) and model.log_dict[f'l_{name}'] > 0, name
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    assert all(torch.equal(teacher_before[k], v) for k, v in model.net_t.state_dict().items())
    assert all(p.grad is None for p in model.net_t.parameters())
    for name in ('fitnet', 'overhaul', 'td_lr'):
        assert any(not torch.equal(a, b) for a, b in zip(extra[name], terms[name].parameters())), name
    assert terms['overhaul'].loss.margin(0).lt(0).any(), 'the margin is estimated from the teacher features'
