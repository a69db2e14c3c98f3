"""Performance tooling: the training profiler, the I/O benchmark and the train.efficiency options.

No timing is asserted (timings on a shared 2-core machine are noise): the tests check structure, that every
phase is measured, that both backends read identical tensors, that each efficiency option trains, and that with
the options off a step is bit-identical to the plain sequence the models ran before they existed.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

import stdsr  # noqa: F401
from basicsr.archs import build_network
from basicsr.utils import get_root_logger
from e2e_helpers import DEMO_OPTIONS, REPO_ROOT, build_training_model, first_batch, load_script, tiny_run_overrides
from stdsr.runtime import train_efficiency as efficiency
from stdsr.archs.clip_runner import run_clip
from stdsr.distill.feature_hooks import stack_frames
from stdsr.config.options import OptionError, load_yaml
from stdsr.tools.profiling.training import (PHASES, PhaseTimer, StepMemory, check_targets, floor_options, ratios,
                                        summarize_iterations)

STD_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_STD_demo.yml')
BASELINE_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_baseline_demo.yml')
TINY_T = {'num_feat': 8, 'num_block': 1, 'num_feat_hr': 8, 'num_feat_flow': 8}
TINY_G = {'num_feat': 6, 'num_block': 1, 'num_feat_hr': 4, 'num_feat_flow': 6}




profile_train = load_script('profile_train')
bench_io = load_script('bench_io')


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def vespcn_teacher(tmp_path_factory):
    """A tiny VESPCN teacher with random weights, in BasicSR's checkpoint format."""
    torch.manual_seed(0)
    net_opt = dict(load_yaml(STD_OPT)['network_t'], **TINY_T)
    path = tmp_path_factory.mktemp('teacher') / 'net_t.pth'
    torch.save({'params': build_network(net_opt).state_dict()}, path)
    return path


def perf_overrides(demo_root, work, teacher=None, name='perf'):
    force = tiny_run_overrides(demo_root, work, 4, name) + [f'network_g:{k}={v}' for k, v in TINY_G.items()]
    if teacher is not None:
        force += [f'network_t:{k}={v}' for k, v in TINY_T.items()]
        force += [f'path:pretrain_network_t={teacher}', 'distill:losses:td:hidden_channels=4']
    return force


def build_tiny(opt_file, demo_root, work, teacher=None, extra=()):
    return build_training_model(opt_file, [*perf_overrides(demo_root, work, teacher), *extra], work)


def tiny_batch(model):
    torch.manual_seed(1)
    return first_batch(model)


def train_steps(model, batch, steps=2):
    for it in range(1, steps + 1):
        model.feed_data(batch)
        model.optimize_parameters(it)
    return model


def student_state(model):
    return {k: v.detach().clone() for k, v in model.get_bare_model(model.net_g).state_dict().items()}


# ---------------------------------------------------------------------------------------------- profiler
def check_profile(result, distill):
    for name in PHASES + ('step', ):
        stats = result['phases'][name]
        assert set(stats) == {'median_s', 'mean_s', 'min_s', 'max_s'}
        assert all(v >= 0 for v in stats.values()), name
    assert result['phases']['step']['median_s'] > 0
    assert result['phases']['student_forward']['median_s'] > 0 and result['phases']['backward']['median_s'] > 0
    assert len(result['per_iteration']) == result['iters']
    for record in result['per_iteration']:  # the phases of a step never add up to more than the step
        assert sum(record.get(p, 0.0) for p in PHASES if p != 'data_wait') <= record['step'] * (1 + 1e-9)
    assert result['memory']['runs']['profiled']['tensor_peak_bytes'] > 0
    assert (result['phases']['teacher_forward']['median_s'] > 0) == distill
    assert (result['phases']['distill_losses']['median_s'] > 0) == distill


def test_profile_train_plain_model_writes_every_phase(tiny_demo_root, tmp_path, capsys):
    out = tmp_path / 'prof.json'
    argv = ['-opt', BASELINE_OPT, '--iters', '2', '--warmup', '1', '--device', 'cpu', '--json', str(out),
            '--force_yml', *perf_overrides(tiny_demo_root, tmp_path)]
    profile_train.main(argv)
    result = json.loads(out.read_text())
    assert result['model_type'] == 'ClipVSRModel' and result['floor'] is None
    check_profile(result, distill=False)
    assert result['lq_shape'][:2] == [2, 3]
    printed = capsys.readouterr().out
    assert all(name in printed for name in PHASES) and 'floor' not in printed
    with pytest.raises(SystemExit, match='exists'):  # an existing profile is never replaced silently
        profile_train.main(argv)
    assert not (tmp_path / 'experiments').exists()  # profiling writes no experiment folder


def test_profile_train_distill_model_measures_floor_and_variant(tiny_demo_root, tmp_path, vespcn_teacher, capsys):
    out = tmp_path / 'prof.json'
    profile_train.main([
        '-opt', STD_OPT, '--iters', '2', '--warmup', '1', '--device', 'cpu', '--json', str(out), '--compare',
        'distill:teacher_inference_mode=true', '--force_yml', *perf_overrides(tiny_demo_root, tmp_path, vespcn_teacher)
    ])
    result = json.loads(out.read_text())
    assert result['model_type'] == 'DistillVSRModel'
    check_profile(result, distill=True)
    floor = result['floor']
    assert floor['student_step']['median_s'] > 0 and floor['teacher_forward']['median_s'] > 0
    for record in floor['per_iteration']:
        assert record['floor'] == pytest.approx(record['student_step'] + record['teacher_forward'])
    assert set(result['memory']['runs']) == {'profiled', 'floor', 'variant'}
    assert result['ratios']['std_over_floor'] == pytest.approx(result['phases']['step']['median_s'] /
                                                               floor['floor']['median_s'])
    assert set(result['targets']) == {'std_over_floor', 'losses_share', 'data_share'}
    assert result['compare']['teacher_inference_mode'] is True and result['compare']['step_ratio'] > 0
    printed = capsys.readouterr().out
    assert 'floor' in printed and 'std_over_floor' in printed and 'variant' in printed


def test_profile_compare_refuses_data_changes(tiny_demo_root, tmp_path):
    with pytest.raises(SystemExit, match='data set'):
        profile_train.main(['-opt', BASELINE_OPT, '--iters', '1', '--warmup', '0', '--device', 'cpu', '--compare',
                            'datasets:train:gt_size=16', '--force_yml', *perf_overrides(tiny_demo_root, tmp_path)])


def test_phase_timer_accounts_other_time():
    timer = PhaseTimer('cpu')
    timer.begin()
    with timer.phase('backward'):
        sum(range(1000))
    with timer.phase('backward'):  # a phase entered twice accumulates
        sum(range(1000))
    record = timer.end(step_seconds=1.0)
    assert 0 < record['backward'] < 1.0
    assert record['other'] == pytest.approx(1.0 - record['backward'])
    summary = summarize_iterations(timer.iterations, ('backward', 'teacher_forward'))
    assert summary['teacher_forward']['median_s'] == 0.0  # a phase a model does not have reads 0


def test_step_memory_sees_tensors_allocated_in_the_step():
    kept = []
    mib = 1 << 20
    result = StepMemory('cpu').measure(lambda: kept.append(torch.ones(4 * mib, dtype=torch.uint8) + 1))
    assert result['tensor_peak_bytes'] >= 4 * mib  # the sum (and the temporary ones) at least
    small = StepMemory('cpu').measure(lambda: torch.ones(16))
    assert small['tensor_peak_bytes'] < mib


def test_floor_options_and_targets():
    opt = {'name': 'x', 'model_type': 'DistillVSRModel', 'network_g': {}, 'network_t': {}, 'distill': {},
           'path': {'pretrain_network_t': 'a', 'strict_load_t': True}}
    floor = floor_options(opt)
    assert floor['model_type'] == 'ClipVSRModel' and 'network_t' not in floor and 'distill' not in floor
    assert 'pretrain_network_t' not in floor['path'] and 'network_t' in opt  # the original is untouched
    phases = {name: {'median_s': 0.0, 'max_s': 0.0} for name in PHASES + ('step', )}
    assert ratios(phases)['losses_share'] is None  # a plain model has no distillation share
    phases.update(step={'median_s': 1.0}, distill_losses={'median_s': 0.2}, data_wait={'median_s': 0.01},
                  teacher_forward={'median_s': 0.3, 'max_s': 0.4})
    values = ratios(phases, {'floor': {'median_s': 0.8}})
    assert values['std_over_floor'] == pytest.approx(1.25) and values['losses_share'] == pytest.approx(0.2)
    checks = check_targets(values)
    assert not checks['std_over_floor']['met'] and not checks['losses_share']['met'] and checks['data_share']['met']


# ---------------------------------------------------------------------------------------------- bench_io
def test_bench_io_reads_identical_tensors_from_both_backends(tiny_demo_root, tmp_path, capsys):
    out = tmp_path / 'io.json'
    report = bench_io.main(['--root', str(tiny_demo_root), '--samples', '3', '--repeats', '1', '--num-frame', '3',
                            '--compress-levels', '0', '--json', str(out)])
    assert set(report['results']) == {'png_folders', 'lmdb', 'lmdb_c0'}
    for name, entry in report['results'].items():
        assert entry['identical'] is True and entry['clips_per_s'] > 0, name
        assert entry['gt_frame']['decode_us'] > 0 and entry['gt_frame']['mean_bytes'] > 0
    assert report['results']['lmdb']['gt_root'].endswith('train_GT.lmdb')
    assert json.loads(out.read_text())['samples'] == 3
    assert 'lmdb_c0' in capsys.readouterr().out
    assert not list(tmp_path.glob('bench_io_*'))


def test_bench_io_detects_differing_reads(tiny_demo_root):
    args = bench_io.build_parser().parse_args(['--root', str(tiny_demo_root), '--num-frame', '3'])
    paths = bench_io.resolve_paths(args)
    args.meta_info_path = paths['meta_info']
    dataset = bench_io.PairedClipDataset(bench_io.dataset_options(args, paths['gt'], paths['lq'], 'disk'))
    plan = bench_io.sample_plan(len(dataset), 2, seed=0)
    first, again = bench_io.read_all(dataset, plan), bench_io.read_all(dataset, plan)
    assert bench_io.check_identical(first, again, 'again')  # same (index, seed) -> same crop and flips
    again[1]['gt'] = again[1]['gt'].clone()
    again[1]['gt'][0, 0, 0, 0] += 1e-3
    with pytest.raises(bench_io.DataError, match='sample 1'):
        bench_io.check_identical(first, again, 'tampered')


def test_bench_io_missing_lmdb_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match='train/GT'):
        bench_io.main(['--root', str(tmp_path)])


# ---------------------------------------------------------------------------------------- efficiency options
def reference_step(model, current_iter):
    """The training step exactly as the models ran it before train.efficiency existed."""
    model.optimizer_g.zero_grad(set_to_none=True)
    model.rec_s.clear()
    model.rec_t.clear()
    with torch.no_grad():
        run_clip(model.net_t, model.lq, model.mode_t, model.window_t)
    output = run_clip(model.net_g, model.lq, model.mode_g, model.window_g)
    losses = [model.cri_pix(output, model.gt)]
    values = {'l_pix': losses[0].detach()}
    b, n = model.lq.shape[:2]
    for name, term in model.distill_terms.items():
        feats_s = stack_frames(model.rec_s.records[term.student_layer], b, n)
        feats_t = stack_frames(model.rec_t.records[term.teacher_layer], b, n)
        loss = term.loss(feats_s, feats_t)
        if term.balance is not None:  # loss_share: the calibrated lambda weighs the unit-weight loss
            values[f'{name}.raw'] = loss.detach()
            loss = term.balance.weight * loss
        values.update({f'{name}.{key}': value for key, value in getattr(term.loss, 'last_stats', {}).items()})
        losses.append(loss)
    sum(losses).backward()
    torch.nn.utils.clip_grad_norm_(model.net_g.parameters(), model.opt['train']['grad_clip'])  # the student alone
    model.optimizer_g.step()
    model.log_dict = {}
    model.step_values = {key: value.float().item() for key, value in values.items()}
    model.after_step(current_iter)
    model.model_ema(decay=model.ema_decay)


@pytest.mark.parametrize('extra', [[], ['train:efficiency={channels_last: false, amp: ~, compile: false}',
                                        'distill:teacher_inference_mode=false']])
def test_options_off_step_is_bit_identical_to_the_plain_sequence(tiny_demo_root, tmp_path, vespcn_teacher, extra):
    extra = ['train:ema_decay=0.9', 'train:grad_clip=0.5', *extra]
    model = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, extra)
    reference = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, extra)
    batch = tiny_batch(model)
    train_steps(model, batch)
    for it in (1, 2):
        reference.feed_data(batch)
        reference_step(reference, it)
    for (key, a), b in zip(student_state(model).items(), student_state(reference).values()):
        assert torch.equal(a, b), key
    for key, value in model.distill_terms.state_dict().items():
        assert torch.equal(value, reference.distill_terms.state_dict()[key]), key
    assert torch.equal(next(model.net_g_ema.parameters()), next(reference.net_g_ema.parameters()))


def test_teacher_inference_mode_gives_the_same_step(tiny_demo_root, tmp_path, vespcn_teacher):
    plain = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher)
    fast = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, ['distill:teacher_inference_mode=true'])
    batch = tiny_batch(plain)
    train_steps(plain, batch)
    train_steps(fast, batch)
    assert plain.log_dict == fast.log_dict
    for (key, a), b in zip(student_state(plain).items(), student_state(fast).values()):
        assert torch.equal(a, b), key


def test_teacher_inference_mode_feeds_a_loss_that_saves_teacher_features(tiny_demo_root, tmp_path, vespcn_teacher):
    """FitNet-style losses save the teacher tensor for backward: inference tensors must be cloned first."""
    extra = ['distill:teacher_inference_mode=true', 'distill:losses={out: {type: MSELoss, loss_weight: 1.0, '
             "student_layer: '', teacher_layer: ''}}"]
    model = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, extra)
    train_steps(model, tiny_batch(model), steps=1)
    assert model.log_dict['l_out'] > 0


def test_channels_last_trains_close_to_the_default(tiny_demo_root, tmp_path, vespcn_teacher):
    plain = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher)
    nhwc = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, ['train:efficiency={channels_last: true}'])
    conv_w = nhwc.get_bare_model(nhwc.net_g).conv_hr.weight
    assert conv_w.is_contiguous(memory_format=torch.channels_last) and not conv_w.is_contiguous()
    assert nhwc.net_t.conv_hr.weight.is_contiguous(memory_format=torch.channels_last)
    batch = tiny_batch(plain)
    train_steps(plain, batch)
    train_steps(nhwc, batch)
    for name, value in plain.log_dict.items():
        assert nhwc.log_dict[name] == pytest.approx(value, rel=1e-4, abs=1e-7), name
    for (key, a), b in zip(student_state(plain).items(), student_state(nhwc).values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=key)


def test_bf16_autocast_trains_on_cpu(tiny_demo_root, tmp_path, vespcn_teacher):
    plain = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher)
    bf16 = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, ['train:efficiency={amp: bf16}'])
    batch = tiny_batch(plain)
    before = student_state(bf16)
    dtypes = []
    bf16.get_bare_model(bf16.net_g).conv_hr.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    train_steps(plain, batch, steps=1)
    train_steps(bf16, batch, steps=1)
    assert dtypes == [torch.bfloat16]  # the student really ran under autocast
    assert all(p.dtype == torch.float32 for p in bf16.net_g.parameters())  # weights and updates stay float32
    for name, value in plain.log_dict.items():
        assert bf16.log_dict[name] == pytest.approx(value, rel=0.1, abs=1e-6), name
    assert any(not torch.equal(before[k], v) for k, v in student_state(bf16).items())


def test_efficiency_options_are_validated(tiny_demo_root, tmp_path, vespcn_teacher):
    with pytest.raises(OptionError, match=r"train\.efficiency\.channel_last.*channels_last"):
        build_tiny(BASELINE_OPT, tiny_demo_root, tmp_path, extra=['train:efficiency={channel_last: true}'])
    with pytest.raises(OptionError, match=r"train\.efficiency\.amp.*bf16"):
        build_tiny(BASELINE_OPT, tiny_demo_root, tmp_path, extra=['train:efficiency={amp: fp32}'])
    with pytest.raises(OptionError, match=r"train\.efficiency\.compile"):
        build_tiny(BASELINE_OPT, tiny_demo_root, tmp_path, extra=['train:efficiency={compile: sometimes}'])
    with pytest.raises(OptionError, match=r'fp16.*CUDA'):
        build_tiny(BASELINE_OPT, tiny_demo_root, tmp_path, extra=['train:efficiency={amp: fp16}'])


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    def broken_compile(fn, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError('no C++ compiler found')
        return call

    monkeypatch.setattr(torch, 'compile', broken_compile)
    # BasicSR's logger stops propagation to the root logger, where caplog listens, when it is first set up; let it
    # propagate here so the test sees the warning whether or not an earlier test set the logger up.
    monkeypatch.setattr(get_root_logger(), 'propagate', True)
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    expected = torch.nn.functional.conv2d(x, net.weight, net.bias)
    efficiency.compile_with_fallback(net)
    assert efficiency.is_compiled(net)
    with caplog.at_level('WARNING', logger='basicsr'):
        out = net(x)
    assert torch.equal(out, expected)
    assert not efficiency.is_compiled(net)
    assert any('no C++ compiler' in r.getMessage() and 'without compilation' in r.getMessage() for r in caplog.records)
    assert torch.equal(net(x), expected)  # eager from now on


@pytest.mark.skipif(os.environ.get('STDSR_TEST_COMPILE') != '1',
                    reason='torch.compile of even a tiny student takes ~25-60 s on the 2-core CPU (inductor '
                    'builds C++); set STDSR_TEST_COMPILE=1 to run it')
def test_compile_option_trains_a_step(tiny_demo_root, tmp_path, vespcn_teacher):
    plain = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher)
    compiled = build_tiny(STD_OPT, tiny_demo_root, tmp_path, vespcn_teacher, ['train:efficiency={compile: true}'])
    batch = tiny_batch(plain)
    train_steps(plain, batch)
    train_steps(compiled, batch)
    assert efficiency.is_compiled(compiled.get_bare_model(compiled.net_g))
    assert compiled.efficiency.compile_seconds is not None
    for name, value in plain.log_dict.items():
        assert compiled.log_dict[name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    assert sorted(student_state(compiled)) == sorted(student_state(plain))  # checkpoint keys unchanged


@pytest.mark.slow
def test_scripts_run_as_files():
    for name in ('profile_train', 'bench_io'):
        proc = subprocess.run([sys.executable, str(REPO_ROOT / 'scripts' / f'{name}.py'), '--help'], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and 'usage' in proc.stdout, proc.stderr
