import math

import pytest
import torch
from torch import nn as nn

import stdsr  # noqa: F401  (patches torchvision and registers stdsr archs/losses)
from basicsr.losses import build_loss
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY
from stdsr.archs.convlstm_arch import ConvLSTM
from stdsr.losses.distill_loss import SpaceDistillLoss, TimeDistillLoss, attention_map
from stdsr.distill.feature_hooks import FeatureRecorder

# (C=2, H=1, W=2): channel 0 = [1, -2], channel 1 = [3, 0.5]
SMALL = torch.tensor([[[1.0, -2.0]], [[3.0, 0.5]]])


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_registered():
    assert ARCH_REGISTRY.get('ConvLSTM') is ConvLSTM
    assert LOSS_REGISTRY.get('SpaceDistillLoss') is SpaceDistillLoss
    assert LOSS_REGISTRY.get('TimeDistillLoss') is TimeDistillLoss
    loss = build_loss({'type': 'TimeDistillLoss', 'student_channels': 4, 'teacher_channels': 8, 'loss_weight': 0.5})
    assert isinstance(loss, TimeDistillLoss) and loss.loss_weight == 0.5


def test_attention_map_hand_computed():
    sum_sq = attention_map(SMALL)
    torch.testing.assert_close(sum_sq, torch.tensor([[1 + 9.0, 4 + 0.25]]))
    torch.testing.assert_close(attention_map(SMALL, p=1), torch.tensor([[1 + 3.0, 2 + 0.5]]))
    torch.testing.assert_close(attention_map(SMALL, mapping='max_pow'), torch.tensor([[9.0, 4.0]]))
    norm = math.sqrt(10.0**2 + 4.25**2)
    torch.testing.assert_close(attention_map(SMALL, normalize='l2'), torch.tensor([[10.0 / norm, 4.25 / norm]]))
    # leading dims are kept, maps are normalised one by one
    batched = torch.stack([SMALL, 2 * SMALL])[None]  # (1, 2, C, H, W)
    out = attention_map(batched, normalize='l2')
    assert out.shape == (1, 2, 1, 2)
    torch.testing.assert_close(out[0, 0], out[0, 1])


def test_attention_map_bad_options():
    with pytest.raises(ValueError, match='mean_pow'):
        attention_map(SMALL, mapping='mean_pow')
    with pytest.raises(ValueError, match='l1'):
        attention_map(SMALL, normalize='l1')
    with pytest.raises(ValueError, match='sum_abs'):
        SpaceDistillLoss(mapping='sum_abs')


def test_space_loss_hand_computed():
    # (B=1, N=2, C=2, H=2, W=2); student and teacher differ in channel count on purpose
    student = torch.arange(16, dtype=torch.float32).reshape(1, 2, 2, 2, 2) / 4
    teacher = torch.ones(1, 2, 3, 2, 2)
    s_map = (student**2).sum(dim=2)  # (1, 2, 2, 2)
    t_map = torch.full((1, 2, 2, 2), 3.0)
    per_frame = [((s_map[0, n] - t_map[0, n])**2).mean().item() for n in range(2)]
    expected = 0.5 * sum(per_frame) / 2
    loss = SpaceDistillLoss(loss_weight=0.5)(student, teacher)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    none = SpaceDistillLoss(reduction='none')(student, teacher)
    assert none.shape == (1, 2)
    assert none[0, 1].item() == pytest.approx(per_frame[1], rel=1e-6)


def test_space_loss_zero_for_identical_and_spatial_mismatch():
    feat = torch.randn(2, 3, 4, 5, 5)
    assert SpaceDistillLoss()(feat, feat.clone()).item() == 0.0
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 5, 5\).*\(2, 3, 4, 6, 5\)'):
        SpaceDistillLoss()(feat, torch.randn(2, 3, 4, 6, 5))


def test_space_loss_gradients():
    student = torch.randn(1, 2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(1, 2, 5, 4, 4, requires_grad=True)
    SpaceDistillLoss()(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_convlstm_shapes_and_forget_bias():
    lstm = ConvLSTM(3, hidden_channels=5, kernel_size=3)
    out, (h, c) = lstm(torch.randn(2, 4, 3, 6, 7))
    assert out.shape == (2, 4, 5, 6, 7) and h.shape == c.shape == (2, 5, 6, 7)
    torch.testing.assert_close(out[:, -1], h)
    bias = lstm.conv.bias.detach()
    assert torch.equal(bias[5:10], torch.ones(5)) and torch.equal(bias[:5], torch.zeros(5))
    with pytest.raises(ValueError):
        ConvLSTM(3, kernel_size=2)


def test_convlstm_recurrence_1x1():
    lstm = ConvLSTM(1, hidden_channels=1, kernel_size=1)
    # gate rows i, f, o, g; columns (x, h)
    weight = torch.tensor([[0.5, -0.3], [0.2, 0.4], [-0.7, 0.1], [1.1, 0.6]]).reshape(4, 2, 1, 1)
    bias = torch.tensor([0.1, 1.0, -0.2, 0.05])
    with torch.no_grad():
        lstm.conv.weight.copy_(weight)
        lstm.conv.bias.copy_(bias)
    xs = [0.8, -1.5, 0.3]
    h = c = 0.0
    for x in xs:
        pre = [weight[k, 0, 0, 0].item() * x + weight[k, 1, 0, 0].item() * h + bias[k].item() for k in range(4)]
        i, f, o, g = sigmoid(pre[0]), sigmoid(pre[1]), sigmoid(pre[2]), math.tanh(pre[3])
        c = f * c + i * g
        h = o * math.tanh(c)
    seq = torch.tensor(xs).reshape(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2)  # 1x1 kernel: every pixel independent
    out, (h_n, c_n) = lstm(seq)
    torch.testing.assert_close(c_n, torch.full((1, 1, 2, 2), c))
    torch.testing.assert_close(h_n, torch.full((1, 1, 2, 2), h))


@pytest.mark.parametrize('form', ['fixed', 'paper'])
def test_time_loss_zero_for_identical_positive_otherwise(form):
    torch.manual_seed(0)
    loss_fn = TimeDistillLoss(4, 4, hidden_channels=3, form=form)
    assert isinstance(loss_fn.adapter, nn.Identity)
    feat = torch.randn(2, 3, 4, 6, 6)
    assert loss_fn(feat, feat.clone()).item() == 0.0
    assert loss_fn.last_stats['raw'].item() == 0.0 and loss_fn.last_stats['cell_t'].item() > 0
    loss = loss_fn(feat, feat + torch.randn_like(feat))
    assert loss.item() > 0 and loss_fn.last_stats['raw'].item() == pytest.approx(loss.item())
    weighted = TimeDistillLoss(4, 4, hidden_channels=3, loss_weight=3.0, form=form)
    weighted.load_state_dict(loss_fn.state_dict())
    other = feat.flip(1)
    assert weighted(feat, other).item() == pytest.approx(3.0 * loss_fn(feat, other).item(), rel=1e-6)
    assert weighted.last_stats['raw'].item() == pytest.approx(loss_fn.last_stats['raw'].item(), rel=1e-6)


def _final_cells(loss_fn, student, teacher):
    pooled = [nn.functional.avg_pool2d(f.flatten(0, 1), 2).unflatten(0, (2, 3)) for f in (student, teacher)]
    (_, (_, c_s)), (_, (_, c_t)) = loss_fn.convlstm(pooled[0]), loss_fn.convlstm(pooled[1])
    return c_s, c_t


def test_time_loss_compares_final_cell_states():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, 6, 6), torch.randn(2, 3, 4, 6, 6)
    paper = TimeDistillLoss(4, 4, hidden_channels=3, pool=2, form='paper')
    c_s, c_t = _final_cells(paper, student, teacher)
    torch.testing.assert_close(paper(student, teacher), ((c_s - c_t)**2).mean())
    # fixed (default): relative to the teacher cell's variance, per clip, then averaged over clips
    fixed = TimeDistillLoss(4, 4, hidden_channels=3, pool=2)
    c_s, c_t = _final_cells(fixed, student, teacher)
    per_clip = ((c_s - c_t)**2).flatten(1).mean(1) / (c_t.flatten(1).var(1) + fixed.eps)
    torch.testing.assert_close(fixed(student, teacher), per_clip.mean())
    assert fixed.last_stats['cell_t'].item() == pytest.approx(c_t.abs().mean().item())
    # scale-free: scaling both cell states leaves it unchanged (what a common rescaling of the memory cannot game)
    assert (((2 * c_s - 2 * c_t)**2).flatten(1).mean(1) / (2 * c_t).flatten(1).var(1)).mean().item() == \
        pytest.approx(per_clip.mean().item(), rel=1e-4)


def test_time_loss_gradients_paper_form_trains_convlstm_through_both_streams():
    torch.manual_seed(0)
    loss_fn = TimeDistillLoss(3, 5, hidden_channels=4, form='paper')
    assert isinstance(loss_fn.adapter, nn.Conv2d)
    assert (loss_fn.adapter.in_channels, loss_fn.adapter.out_channels) == (3, 5)
    student = torch.randn(1, 3, 3, 5, 5, requires_grad=True)
    teacher = torch.randn(1, 3, 5, 5, 5, requires_grad=True)
    loss_fn(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    for name, param in loss_fn.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_time_loss_fixed_form_moves_only_the_student_and_adapter():
    torch.manual_seed(0)
    loss_fn = TimeDistillLoss(3, 5, hidden_channels=4)
    assert loss_fn.form == 'fixed' and not any(p.requires_grad for p in loss_fn.convlstm.parameters())
    student = torch.randn(1, 3, 3, 5, 5, requires_grad=True)
    teacher = torch.randn(1, 3, 5, 5, 5, requires_grad=True)
    loss_fn(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None
    assert all(p.grad is None for p in loss_fn.convlstm.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss_fn.adapter.parameters())


def _train_convlstm_alone(form, steps, seed=0, lr=4e-4):
    """A student that never improves (S = T + noise, new clips each step); only the TD module is optimised.

    Returns the unweighted L_TD of every step.
    """
    torch.manual_seed(seed)
    loss_fn = TimeDistillLoss(8, 8, hidden_channels=8, form=form, freeze_threshold=0)
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=lr)
    raw = []
    for _ in range(steps):
        teacher = torch.rand(4, 3, 8, 8, 8)
        student = (teacher + 0.3 * torch.randn_like(teacher)).requires_grad_()  # a leaf nobody optimises
        optimizer.zero_grad()
        loss_fn(student, teacher).backward()
        optimizer.step()
        raw.append(loss_fn.last_stats['raw'].item())
    return raw


@pytest.mark.slow
def test_time_loss_paper_form_collapses_and_the_default_form_does_not():
    """The failure and the fix: the literal form's ConvLSTM zeroes L_TD on its own, the default form's cannot."""
    steps = 1000

    def start_end(raw):
        return sum(raw[:20]) / 20, sum(raw[-20:]) / 20

    start, end = start_end(_train_convlstm_alone('paper', steps))
    assert end < 0.05 * start, (start, end)
    start, end = start_end(_train_convlstm_alone('fixed', steps))
    assert end > 0.5 * start, (start, end)


def test_time_loss_pool_changes_convlstm_input():
    feat = torch.randn(1, 2, 4, 8, 8)
    sizes = {}
    for pool in (1, 4):
        loss_fn = TimeDistillLoss(4, 4, hidden_channels=2, pool=pool)
        with FeatureRecorder(loss_fn, ['convlstm']) as rec:
            loss_fn(feat, feat * 0.5)
            sizes[pool] = [tuple(out.shape) for out in rec.records['convlstm']]
    assert sizes[1] == [(2, 2, 2, 8, 8)]  # both streams through the one shared ConvLSTM, in one batched pass
    assert sizes[4] == [(2, 2, 2, 2, 2)]
    with pytest.raises(ValueError):
        TimeDistillLoss(4, 4, pool=0)
    with pytest.raises(ValueError, match='form'):
        TimeDistillLoss(4, 4, form='literal')


def test_time_loss_channel_and_shape_checks():
    loss_fn = TimeDistillLoss(3, 5)
    with pytest.raises(ValueError, match='3/5'):
        loss_fn(torch.randn(1, 2, 4, 4, 4), torch.randn(1, 2, 5, 4, 4))
    with pytest.raises(ValueError, match='spatial'):
        loss_fn(torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 5, 4, 3))


def test_freeze_below_threshold_and_resume():
    loss_fn = TimeDistillLoss(3, 5, hidden_channels=2, freeze_threshold=1e-8, form='paper')
    assert not loss_fn.update_frozen(1e-3)
    assert all(p.requires_grad for p in loss_fn.parameters()) and not loss_fn.frozen.item()
    assert loss_fn.update_frozen(1e-9)
    assert loss_fn.frozen.item() and not any(p.requires_grad for p in loss_fn.parameters())
    assert loss_fn.update_frozen(1.0)  # never unfreezes
    # frozen: the student still learns, the ConvLSTM and adapter get no grads
    student = torch.randn(1, 2, 3, 4, 4, requires_grad=True)
    loss_fn(student, torch.randn(1, 2, 5, 4, 4)).backward()
    assert student.grad is not None and all(p.grad is None for p in loss_fn.parameters())

    state = loss_fn.state_dict()
    assert 'frozen' in state and state['frozen'].item()
    fresh = TimeDistillLoss(3, 5, hidden_channels=2, form='paper')
    assert all(p.requires_grad for p in fresh.parameters())
    fresh.load_state_dict(state)
    assert fresh.frozen.item() and not any(p.requires_grad for p in fresh.parameters())
    assert torch.equal(fresh.convlstm.conv.weight, loss_fn.convlstm.conv.weight)
    # also when nested in a parent module (prefixed keys), as in a model checkpoint
    parent, fresh_parent = nn.ModuleDict({'td': loss_fn}), nn.ModuleDict({'td': TimeDistillLoss(3, 5, 2, form='paper')})
    fresh_parent.load_state_dict(parent.state_dict())
    assert not any(p.requires_grad for p in fresh_parent.parameters())


def test_fixed_form_freezes_its_adapter_and_never_trains_its_convlstm():
    loss_fn = TimeDistillLoss(3, 5, hidden_channels=2, freeze_threshold=1e-3)
    assert all(p.requires_grad for p in loss_fn.adapter.parameters())
    assert loss_fn.update_frozen(1e-4)
    assert not any(p.requires_grad for p in loss_fn.parameters())
    fresh = TimeDistillLoss(3, 5, hidden_channels=2)
    fresh.load_state_dict(TimeDistillLoss(3, 5, hidden_channels=2).state_dict())  # not frozen: adapter trains again
    assert all(p.requires_grad for p in fresh.adapter.parameters())
    assert not any(p.requires_grad for p in fresh.convlstm.parameters())


def test_time_loss_standardize_clip_ignores_each_streams_scale_and_offset():
    """standardize='clip': a clip scaled and shifted (per clip, per stream) gives the same L_TD; 'none' does not."""
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, 6, 6), torch.randn(2, 3, 4, 6, 6)
    # clip 0 x10 + 3, clip 1 x0.1 - 1: every clip of the batch is standardized on its own
    gain = torch.tensor([10.0, 0.1]).view(2, 1, 1, 1, 1)
    shift = torch.tensor([3.0, -1.0]).view(2, 1, 1, 1, 1)
    for standardize, invariant in (('clip', True), ('none', False)):
        torch.manual_seed(1)
        loss_fn = TimeDistillLoss(4, 4, hidden_channels=3, standardize=standardize)
        plain = loss_fn(student, teacher).item()
        moved = loss_fn(student * gain + shift, teacher * gain.flip(0) - shift).item()
        assert (abs(moved - plain) < 1e-4 * plain) == invariant, (standardize, plain, moved)
    # the arrangement still matters: a different student clip changes the standardized loss
    loss_fn = TimeDistillLoss(4, 4, hidden_channels=3, standardize='clip')
    assert abs(loss_fn(student, teacher).item() - loss_fn(torch.randn_like(student), teacher).item()) > 1e-3
    assert loss_fn(teacher, teacher).item() < 1e-8
    with pytest.raises(ValueError, match='standardize'):
        TimeDistillLoss(4, 4, standardize='frame')
