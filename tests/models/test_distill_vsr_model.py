"""DistillVSRModel: teacher frozen, gradients where they belong, hooks only in training, ConvLSTM freezing."""
import copy
import re

import pytest
import torch

import stdsr  # noqa: F401
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from e2e_helpers import (DEMO_OPTIONS, build_training_model, first_batch, logged_losses, read_train_log, run_module,
                         tiny_edvr_overrides, tiny_run_overrides)
from stdsr.distill.teacher import TeacherCheckpointError
from stdsr.distill.feature_hooks import UnknownModulePathError
from stdsr.config.options import OptionError, parse_options

STD_OPT = str(DEMO_OPTIONS / 'train_EDVRS_STD_demo.yml')
BASELINE_OPT = str(DEMO_OPTIONS / 'train_EDVRS_baseline_demo.yml')


@ARCH_REGISTRY.register()
class TinyRecurrentVSRForTest(torch.nn.Module):
    """A BasicVSR-shaped recurrent net small enough for tests: one hidden state carried forward, conv_hr per frame."""

    def __init__(self, num_feat=8):
        super().__init__()
        self.num_feat = num_feat
        self.fuse = torch.nn.Conv2d(3 + num_feat, num_feat, 3, 1, 1)
        self.up = torch.nn.Sequential(torch.nn.Conv2d(num_feat, 3 * 16, 3, 1, 1), torch.nn.PixelShuffle(4))
        self.conv_hr = torch.nn.Conv2d(3, 16, 3, 1, 1)
        self.conv_last = torch.nn.Conv2d(16, 3, 3, 1, 1)

    def forward(self, x):
        b, n, _, h, w = x.shape
        state = x.new_zeros(b, self.num_feat, h, w)
        outs = []
        for i in range(n):
            state = torch.relu(self.fuse(torch.cat([x[:, i], state], 1)))
            outs.append(self.conv_last(torch.relu(self.conv_hr(self.up(state)))))
        return torch.stack(outs, 1)


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A tiny EDVR teacher (random weights) saved in BasicSR's checkpoint format."""
    torch.manual_seed(0)
    net = build_network(tiny_teacher_opt())
    path = tmp_path_factory.mktemp('teacher') / 'net_t.pth'
    torch.save({'params': net.state_dict()}, path)
    return path


def tiny_teacher_opt():
    return dict(type='EDVR', num_feat=8, num_frame=5, deformable_groups=1, num_extract_block=1,
                num_reconstruct_block=2, with_tsa=True)


def std_force(demo_root, work, teacher, total_iter=3, name='std'):
    return tiny_run_overrides(demo_root, work, total_iter, name) + tiny_edvr_overrides('network_g', 4) + [
        f'network_t:{k}={v}' for k, v in tiny_teacher_opt().items() if k != 'type'
    ] + [f'path:pretrain_network_t={teacher}', 'val:val_freq=1000', 'logger:save_checkpoint_freq=1000']


def build_std_model(demo_root, work, teacher, extra=()):
    model = build_training_model(STD_OPT, [*std_force(demo_root, work, teacher), *extra], work)
    return model, first_batch(model)


def test_gradients_reach_student_and_convlstm_never_teacher(tiny_demo_root, tmp_path, teacher_ckpt):
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt)
    teacher_before = copy.deepcopy(model.net_t.state_dict())
    for it in range(1, 4):
        model.feed_data(batch)
        model.optimize_parameters(it)
    assert not model.net_t.training
    assert all(not p.requires_grad and p.grad is None for p in model.net_t.parameters())
    for key, value in model.net_t.state_dict().items():
        assert torch.equal(value, teacher_before[key]), f'teacher weight {key} changed'
    assert all(p.grad is not None for p in model.net_g.parameters())
    td = model.distill_terms['td'].loss
    # the default TD form: a fixed ConvLSTM (no gradient), a trained width adapter (student 4 vs teacher 8 channels)
    assert all(p.grad is None for p in td.convlstm.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in td.adapter.parameters())
    assert set(model.log_dict) >= {'l_pix', 'l_sd', 'l_td'}
    assert all(v > 0 for k, v in model.log_dict.items() if k.startswith('l_'))
    # the ConvLSTM is in the optimizer, in its own group
    optimized = {id(p) for g in model.optimizer_g.param_groups for p in g['params']}
    assert all(id(p) in optimized for p in td.parameters())
    assert not any(id(p) in optimized for p in model.net_t.parameters())


@pytest.mark.slow
def test_convlstm_freezes_below_threshold_and_stays_frozen_on_resume(tiny_demo_root, tmp_path, teacher_ckpt):
    force = ['distill:losses:td:freeze_threshold=1e9']  # any loss value is below it
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, force)
    model.feed_data(batch)
    model.optimize_parameters(1)
    td = model.distill_terms['td'].loss
    assert bool(td.frozen) and model.log_dict['td_frozen'] == 1.0
    assert all(not p.requires_grad for p in td.parameters())
    frozen_weights = copy.deepcopy(td.state_dict())
    model.feed_data(batch)
    model.optimize_parameters(2)
    for key, value in td.state_dict().items():
        assert torch.equal(value, frozen_weights[key]), f'frozen ConvLSTM weight {key} changed'
    model.save_training_state(epoch=0, current_iter=2)
    state = torch.load(tmp_path / 'experiments' / 'std' / 'training_states' / '2.state', weights_only=False)
    fresh, _ = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt)  # default threshold: not frozen
    assert not bool(fresh.distill_terms['td'].loss.frozen)
    fresh.resume_training(state)
    fresh_td = fresh.distill_terms['td'].loss
    assert bool(fresh_td.frozen) and all(not p.requires_grad for p in fresh_td.parameters())
    assert torch.equal(fresh_td.convlstm.conv.weight, td.convlstm.conv.weight)


def test_bad_hook_path_lists_nearest_names(tiny_demo_root, tmp_path, teacher_ckpt):
    with pytest.raises(UnknownModulePathError, match=r'conv_hrr.*conv_hr'):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ['distill:student_layer=conv_hrr'])


def test_unknown_distill_option_is_an_error(tiny_demo_root, tmp_path, teacher_ckpt):
    with pytest.raises(OptionError, match=r'distill\.losses\.sd\.mapingg.*mapping'):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ['distill:losses:sd:mapingg=sum_pow'])


def test_teacher_checkpoint_mismatch_names_keys(tiny_demo_root, tmp_path, teacher_ckpt):
    with pytest.raises(TeacherCheckpointError, match=r'shape mismatches: .*conv_first'):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ['network_t:num_feat=12'])
    with pytest.raises(TeacherCheckpointError,
                       match=r'missing keys: fusion\.bias.*unexpected keys: fusion\.feat_fusion'):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ['network_t:with_tsa=false'])
    with pytest.raises(TeacherCheckpointError, match='pretrain_network_t'):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, [f'path:pretrain_network_t={tmp_path}/none.pth'])


def test_recurrent_student_distils_from_sliding_teacher(tiny_demo_root, tmp_path, teacher_ckpt):
    extra = [
        'network_g={type: TinyRecurrentVSRForTest, num_feat: 4}', 'distill:losses:td:pool=4'
    ]
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, extra)
    assert model.mode_g == 'recurrent' and model.mode_t == 'sliding'
    for it in (1, 2):  # loss_share: the first step only measures
        model.feed_data(batch)
        model.optimize_parameters(it)
    assert model.output.shape == batch['gt'].shape
    td = model.distill_terms['td'].loss
    assert isinstance(td.adapter, torch.nn.Conv2d)  # student F^SR 16 ch -> teacher 64 ch
    assert model.log_dict['l_sd'] > 0 and model.log_dict['l_td'] > 0


@pytest.mark.slow
def test_std_run_via_entry_point_saves_a_plain_student(tiny_demo_root, tmp_path, teacher_ckpt):
    force = std_force(tiny_demo_root, tmp_path, teacher_ckpt, total_iter=10, name='std10')
    run_module('stdsr.train', ['-opt', STD_OPT, '--force_yml', *force, 'val:val_freq=10'], cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'std10'
    log = read_train_log(exp)
    assert len(logged_losses(log, 'l_sd')) == 10 and len(logged_losses(log, 'l_td')) == 10
    assert re.search(r'# psnr: [\d.]+', log)
    saved = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)
    assert set(saved) == {'params'}
    # identical keys to the same student trained plainly: no teacher, hook or ConvLSTM state leaks in
    opt, _ = parse_options(['-opt', BASELINE_OPT, '--force_yml', *tiny_edvr_overrides('network_g', 4)],
                           is_train=True, root_path=str(tmp_path))
    plain = build_network(opt['network_g'])
    assert list(saved['params']) == list(plain.state_dict())
    plain.load_state_dict(saved['params'], strict=True)
    assert not list((exp / 'models').glob('net_t*'))


@pytest.mark.slow
def test_two_process_gloo_distillation(tiny_demo_root, tmp_path, teacher_ckpt):
    force = std_force(tiny_demo_root, tmp_path, teacher_ckpt, total_iter=3, name='std_ddp')
    run_module('stdsr.train', ['-opt', STD_OPT, '--force_yml', *force], cwd=tmp_path, nproc=2)
    log = read_train_log(tmp_path / 'experiments' / 'std_ddp')
    assert 'world size 2, backend gloo' in log
    assert len(logged_losses(log, 'l_td')) == 3


def test_bad_teacher_fails_before_an_existing_run_is_touched(tiny_demo_root, tmp_path, teacher_ckpt):
    import stdsr.engine.training as stdsr_train
    existing = tmp_path / 'experiments' / 'std'
    (existing / 'models').mkdir(parents=True)
    (existing / 'models' / 'net_g_5.pth').write_bytes(b'precious')
    force = std_force(tiny_demo_root, tmp_path, teacher_ckpt) + ['network_t:num_feat=12']
    with pytest.raises(TeacherCheckpointError, match='shape mismatches'):
        stdsr_train.train_pipeline(['-opt', STD_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert (existing / 'models' / 'net_g_5.pth').read_bytes() == b'precious'
    assert [p.name for p in (tmp_path / 'experiments').iterdir()] == ['std']


@pytest.mark.slow
def test_overhaul_on_a_post_activation_tap_fails_at_start_up(tiny_demo_root, tmp_path, teacher_ckpt):
    from stdsr.losses.kd_baselines_loss import FeatureTapError
    extra = ['distill:losses={ofd: {type: OverhaulFeatureLoss, loss_weight: 1.0}}', 'distill:student_layer=conv_hr',
             'distill:teacher_layer=conv_hr']  # an in-place LeakyReLU follows conv_hr
    with pytest.raises(FeatureTapError, match=r"layer 'conv_hr' of network_g \(EDVR\).*modified in place"):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, extra)
    ok = ['distill:losses={ofd: {type: OverhaulFeatureLoss, loss_weight: 1.0}}', 'distill:student_layer=upconv2',
          'distill:teacher_layer=upconv2']
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ok)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert model.log_dict['l_ofd'] > 0


@pytest.mark.slow
def test_loss_share_calibrates_lambda_then_holds_it_and_logs_shares(tiny_demo_root, tmp_path, teacher_ckpt):
    force = ['distill:balance={calibration_iters: 2}', 'distill:losses:sd={type: SpaceDistillLoss, loss_share: 0.5}',
             'distill:losses:td={type: TimeDistillLoss, pool: 2, loss_share: 0.25}']
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, force)
    sd = model.distill_terms['sd']
    assert sd.loss.loss_weight == 1.0 and sd.balance.share == 0.5
    seen = []
    for it in range(1, 5):
        model.feed_data(batch)
        model.optimize_parameters(it)
        seen.append(dict(model.log_dict))
    assert seen[0]['sd_lambda'] > 0 and seen[0]['l_sd'] == 0.0  # step 1 only measures
    # after calibration lambda holds: share * mean(pixel) / mean(raw) over the calibration steps
    assert seen[1]['sd_lambda'] == seen[2]['sd_lambda'] == seen[3]['sd_lambda']
    expected = 0.5 * float(sd.balance.pixel_sum) / float(sd.balance.raw_sum)
    assert seen[3]['sd_lambda'] == pytest.approx(expected)
    total = sum(v for k, v in seen[3].items() if k.startswith('l_'))
    assert seen[3]['share_sd'] == pytest.approx(seen[3]['l_sd'] / total)
    assert seen[3]['td_cell_t'] > 0 and seen[3]['td_frozen'] == 0.0
    # lambda survives resume (the calibration sums are in the training state)
    model.save_training_state(epoch=0, current_iter=4)
    state = torch.load(tmp_path / 'experiments' / 'std' / 'training_states' / '4.state', weights_only=False)
    fresh, _ = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, force)
    assert fresh.distill_terms['sd'].balance.weight == 0.0
    fresh.resume_training(state)
    assert fresh.distill_terms['sd'].balance.weight == pytest.approx(seen[3]['sd_lambda'])


def test_balance_start_iter_keeps_lambda_zero_then_calibrates_on_later_steps(tiny_demo_root, tmp_path, teacher_ckpt):
    force = ['distill:balance={calibration_iters: 2, start_iter: 2}',
             'distill:losses:sd={type: SpaceDistillLoss, loss_share: 0.5}']
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, force)
    balance = model.distill_terms['sd'].balance
    lambdas, weighted = [], []
    for it in range(1, 6):
        model.feed_data(batch)
        model.optimize_parameters(it)
        lambdas.append(model.log_dict['sd_lambda'])  # logged after this step's observation
        weighted.append(model.log_dict['l_sd'])
        if it == 2:  # the window has not opened: nothing measured, no distillation
            assert int(balance.count) == 0 and float(balance.raw_sum) == 0.0
    assert lambdas[:2] == [0.0, 0.0] and weighted[:3] == [0.0, 0.0, 0.0]  # 1-2 before the window, 3 only measures
    assert lambdas[2] > 0 and weighted[3] > 0 and lambdas[3] == lambdas[4] and int(balance.count) == 2


@pytest.mark.parametrize('entry', ['distill:balance={start_iter: -1}', 'distill:balance={calibration_iters: 0}',
                                   'distill:balance={start_iter: abc}'])
def test_bad_balance_window_is_an_option_error(tiny_demo_root, tmp_path, teacher_ckpt, entry):
    key = entry.split('{')[1].split(':')[0]
    with pytest.raises(OptionError, match=rf"'distill\.balance\.{key}' must be an integer"):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, [entry])


@pytest.mark.parametrize('entry, message', [
    ('distill:losses:sd:reduction=none', r"'distill.losses.sd.reduction' is 'none'"),
    ('distill:losses:sd:loss_weight=0.1', r"'distill.losses.sd.loss_weight' and 'distill.losses.sd.loss_share'"),
    ('distill:balance={calibration_iterz: 3}', r"distill.balance.calibration_iterz"),
])
def test_bad_distill_weighting_options_fail_at_start_up(tiny_demo_root, tmp_path, teacher_ckpt, entry, message):
    with pytest.raises(OptionError, match=message):
        build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, [entry])


def test_one_collective_per_step_on_the_model_device(tiny_demo_root, tmp_path, teacher_ckpt, monkeypatch):
    """nccl reduces CUDA tensors only: the step's decisions (NaN, balance, freezing) share one all-reduce there."""
    import torch.distributed as dist

    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt,
                                   ['distill:losses:sd={type: SpaceDistillLoss, loss_share: 0.5}'])
    model.opt['dist'] = True  # pretend to run under torchrun; the collectives are recorded, not sent
    model.opt['world_size'] = 1
    calls = []
    monkeypatch.setattr(dist, 'all_reduce', lambda tensor, *a, **k: calls.append(tensor))
    monkeypatch.setattr(dist, 'get_world_size', lambda *a, **k: 1)
    monkeypatch.setattr(model, 'sync_extra_grads', lambda: None)  # gradient averaging is not under test here
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert len(calls) == 1 and calls[0].device == model.device
    assert {'l_pix', 'sd.raw', 'td.raw', 'td.cell_t'} <= set(model.step_values)
    assert model.distill_terms['sd'].balance.steps_seen == 1


def test_grad_clip_clips_the_student_alone(tiny_demo_root, tmp_path, teacher_ckpt, monkeypatch):
    model, batch = build_std_model(tiny_demo_root, tmp_path, teacher_ckpt, ['train:grad_clip=0.5'])
    clipped = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, 'clip_grad_norm_', lambda params, norm: clipped.append(list(params)) or
                        real(clipped[-1], norm))
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert len(clipped) == 1
    student = {id(p) for p in model.net_g.parameters()}
    assert {id(p) for p in clipped[0]} == student
