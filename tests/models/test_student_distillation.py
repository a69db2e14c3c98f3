"""Every option file validates; the student option files stay in step with the EDVRS ones; each student distils.

The distillation runs use the students' own demo STD option files, shrunk by --force_yml: 5 iterations on
tiny demo clips, with a randomly initialised small EDVR teacher saved in BasicSR's checkpoint format.
"""
from pathlib import Path

import pytest
import torch

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.archs import build_network
from e2e_helpers import logged_iters, logged_losses, read_train_log, tiny_run_overrides
from stdsr.engine import training as stdsr_train
from stdsr.config.distill import check_distill_options
from stdsr.config.options import load_yaml, validate_options

REPO_ROOT = Path(__file__).resolve().parents[2]
OPTIONS = REPO_ROOT / 'options'
STUDENTS = ('VSRNet', 'VESPCN', 'FastDVDnetSR')
ALL_OPTION_FILES = sorted(OPTIONS.rglob('*.yml')) + sorted(OPTIONS.rglob('*.yaml'))


def test_option_tree_is_not_empty():
    names = {p.name for p in ALL_OPTION_FILES}
    for net in STUDENTS:
        assert {f'train_{net}_STD_demo.yml', f'train_{net}_baseline_x4_Vimeo90K.yml',
                f'test_{net}_STD_Vid4.yml'} <= names


def plan_references(plan):
    """Option files a scripts/compare_distillation.py plan names (runs, baseline, teacher_opt)."""
    refs = [run if isinstance(run, str) else run['opt'] for run in plan.get('runs') or []]
    return refs + [plan[key] for key in ('baseline', 'teacher_opt') if plan.get(key)]


@pytest.mark.parametrize('path', ALL_OPTION_FILES, ids=lambda p: str(p.relative_to(OPTIONS)))
def test_every_option_file_validates_and_builds(path):
    """Guards the whole tree (everyone's files): keys, model-specific sections and network constructors.

    Comparison plans (a ``runs`` list, no ``model_type``) live beside the option files: every option file they
    name must exist in the repository (and is then validated here itself).
    """
    is_train = path.relative_to(OPTIONS).parts[0] == 'train'
    opt = load_yaml(str(path))
    if 'model_type' not in opt and 'runs' in opt:
        refs = plan_references(opt)
        assert refs, f'{path}: a plan without runs'
        missing = [ref for ref in refs if not (REPO_ROOT / ref).is_file()]
        assert not missing, f'{path}: names option files that do not exist: {missing}'
        return
    validate_options(opt, is_train, source=str(path))
    if opt['model_type'] == 'DistillVSRModel':
        check_distill_options(opt)
        assert opt['path'].get('pretrain_network_t'), f'{path}: a distillation run needs a teacher checkpoint'
    for key in [k for k in opt if k.startswith('network_')]:
        net_opt = dict(opt[key])
        if net_opt.get('spynet_path') and not (REPO_ROOT / net_opt['spynet_path']).is_file():
            net_opt['spynet_path'] = None  # a downloaded zoo file (BasicVSR's SpyNet), not part of the repository
        build_network(net_opt)
    if not is_train:
        assert opt['path'].get('pretrain_network_g'), f'{path}: a test file must name the checkpoint it evaluates'


def _without(opt, *dotted):
    """A copy of ``opt`` without the given (dotted) keys, for comparing two option files section by section."""
    opt = {k: (dict(v) if isinstance(v, dict) else v) for k, v in opt.items()}
    for key in dotted:
        node, *rest = key.split('.')
        if rest:
            opt[node].pop(rest[0], None)
        else:
            opt.pop(node, None)
    return opt


VARIANTS = ('baseline', 'STD')
# (student file with {} for the network, the compact-EDVR file it mirrors)
PAIRS = ([(f'train/STD/students/demo/train_{{}}_{v}_demo.yml', f'train/STD/demo/train_EDVRS_{v}_demo.yml')
          for v in VARIANTS] +
         [(f'train/STD/students/train_{{}}_{v}_x4_Vimeo90K.yml', f'train/STD/train_EDVRS_{v}_x4_Vimeo90K.yml')
          for v in VARIANTS] +
         [(f'test/STD/students/test_{{}}_{v}_Vid4.yml', f'test/STD/test_EDVRS_{v}_Vid4.yml') for v in VARIANTS])


@pytest.mark.parametrize('student', STUDENTS)
@pytest.mark.parametrize('pair', PAIRS, ids=lambda p: Path(p[1]).name)
def test_student_files_match_the_edvrs_ones_but_for_the_network(student, pair):
    """Same data, budget, teacher and losses as the compact-EDVR student: only the student network differs."""
    ours, theirs = (OPTIONS / pair[0].format(student), OPTIONS / pair[1])
    assert theirs.is_file(), f'{ours} mirrors {theirs}, which is gone: update the pair'
    mine, ref = load_yaml(str(ours)), load_yaml(str(theirs))
    assert mine['network_g']['type'] == student
    assert mine['network_g']['num_frame'] == 5
    drop = ('name', 'network_g', 'path.pretrain_network_g')
    assert _without(mine, *drop) == _without(ref, *drop)
    assert mine['name'] == ref['name'].replace('EDVRS', student)


@pytest.mark.parametrize('student', STUDENTS)
@pytest.mark.parametrize('variant', VARIANTS)
def test_test_files_evaluate_the_checkpoint_their_training_writes(student, variant):
    train = load_yaml(str(OPTIONS / f'train/STD/students/train_{student}_{variant}_x4_Vimeo90K.yml'))
    test = load_yaml(str(OPTIONS / f'test/STD/students/test_{student}_{variant}_Vid4.yml'))
    assert test['network_g'] == train['network_g']
    assert test['path']['pretrain_network_g'] == f"experiments/{train['name']}/models/net_g_latest.pth"


def test_full_size_teacher_is_edvr_m_on_septuplets():
    for student in STUDENTS:
        opt = load_yaml(str(OPTIONS / f'train/STD/students/train_{student}_STD_x4_Vimeo90K.yml'))
        teacher = opt['network_t']
        assert (teacher['num_feat'], teacher['num_frame'], teacher['deformable_groups'], teacher['num_extract_block'],
                teacher['num_reconstruct_block'], teacher['with_tsa']) == (64, 5, 8, 5, 10, True)
        assert opt['datasets']['train']['num_frame'] == 7  # one clip length N for teacher and student


# ---------------------------------------------------------------------------------------------------- training
TINY_TEACHER = dict(num_feat=8, deformable_groups=1, num_extract_block=1, num_reconstruct_block=1)


@pytest.fixture(scope='module')
def tiny_teacher(tmp_path_factory):
    """(checkpoint path, --force_yml entries): a random small EDVR teacher in BasicSR's {'params': ...} format."""
    opt = load_yaml(str(OPTIONS / 'train/STD/students/demo/train_VSRNet_STD_demo.yml'))
    arch = dict(opt['network_t'], **TINY_TEACHER)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('teacher') / 'net_t.pth'
    torch.save({'params': build_network(arch).state_dict()}, path)
    return path, [f'network_t:{k}={v}' for k, v in TINY_TEACHER.items()] + [f'path:pretrain_network_t={path}']


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from a second thread, and on a busy 2-core machine OpenMP threads that wait for
    each other make every step many times slower; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('student', STUDENTS)
def test_student_distils_for_five_iterations(student, tiny_demo_root, tmp_path, tiny_teacher, one_thread):
    opt_file = OPTIONS / f'train/STD/students/demo/train_{student}_STD_demo.yml'
    teacher_path, teacher_force = tiny_teacher
    name = f'std_{student}'
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 5, name) + teacher_force + [
        'logger:save_checkpoint_freq=1000', 'val:val_freq=1000'
    ]
    torch.manual_seed(0)
    stdsr_train.train_pipeline(['-opt', str(opt_file), '--force_yml', *force], root_path=str(tmp_path))

    root = tmp_path / 'experiments' / name
    ckpt = torch.load(root / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)
    plain = build_network(dict(load_yaml(str(opt_file))['network_g']))
    assert set(ckpt) == {'params'}
    assert list(ckpt['params']) == list(plain.state_dict())  # the plain student: no teacher, no ConvLSTM
    log = read_train_log(root)
    assert logged_iters(log) == [1, 2, 3, 4, 5]
    for term in ('l_pix', 'l_sd', 'l_td'):
        values = logged_losses(log, term)
        assert len(values) == 5 and all(v == v for v in values), f'{term} not logged every iteration'
    assert any(v > 0 for v in logged_losses(log, 'l_sd'))


# ------------------------------------------------------------------------------------ single-image teachers (PAN)
PAN_FILES = ('STD', 'SD_only', 'TD_only', 'KD_output', 'KD_AT', 'KD_fitnet', 'KD_overhaul')
# the PAN study's other two pairs (issue 31): their files are the VESPCN pair's with the family's demo network
PAN_FAMILIES = {'VSRNet': 'vsrnet', 'FastDVDnetSR': 'fastdvdnet'}
PAN_FAMILY_FILES = ('baseline', 'STD', 'SD_only', 'KD_output', 'KD_AT', 'KD_fitnet', 'KD_overhaul')
PAN = OPTIONS / 'train/STD/pan'


def pan_file(family, variant):
    """The PAN study's option file of a pair; the VESPCN pair's baseline is the demo's own."""
    if family == 'VESPCN' and variant == 'baseline':
        return OPTIONS / 'train/STD/demo/train_VESPCNS_baseline_demo.yml'
    return PAN / f'train_{family}S_{variant}_PAN.yml'


@pytest.mark.parametrize('family', PAN_FAMILIES)
@pytest.mark.parametrize('variant', PAN_FAMILY_FILES)
def test_pan_family_files_match_the_vespcn_ones_but_for_the_network(family, variant):
    """Same data, recipe, teacher and losses as the VESPCN pair; the network is the family's demo-sized one."""
    mine, twin = load_yaml(str(pan_file(family, variant))), load_yaml(str(pan_file('VESPCN', variant)))
    demo = load_yaml(str(OPTIONS / f'train/STD/students/demo/train_{family}_STD_demo.yml'))
    assert mine['network_g'] == demo['network_g']
    assert _without(mine, 'name', 'network_g') == _without(twin, 'name', 'network_g')
    assert mine['name'] == f'pan_{family}S_{variant}_x4'


def _plan_runs(plan):
    return {run['label']: run for run in plan['runs']}


@pytest.mark.parametrize('family', PAN_FAMILIES)
@pytest.mark.parametrize('kind, twin', [('validate', 'plan_validate_pan_study.yml'),
                                        ('compare', 'plan_compare_pan.yml')])
def test_pan_family_plans_mirror_the_vespcn_ones(family, kind, twin):
    """A pair's plans train on the VESPCN pair's data and seeds and score its test sets; every run is the pair's, and
    a label the VESPCN pair's plans use (STD, STD_late, AT, ...) is the same method with the same overrides."""
    lower = PAN_FAMILIES[family]
    plan, ref = load_yaml(str(PAN / f'plan_{kind}_pan_{lower}.yml')), load_yaml(str(PAN / twin))
    for key in ('seeds', 'test_sets'):
        assert plan[key] == ref[key], key
    # the same data; a pair's learning rate may differ, only as one of its validation plan's fallback recipes
    own_lr = [e for e in plan['force_yml'] if e.startswith('train:optim_g:lr=')]
    assert [e for e in plan['force_yml'] if e not in own_lr] == ref['force_yml']
    if own_lr:
        validated = load_yaml(str(PAN / f'plan_validate_pan_{lower}.yml'))
        assert kind == 'compare' and own_lr == _plan_runs(validated)['baseline_lr4e4']['force_yml']
    assert plan['records'] == f'docs/records/pan/{kind}_{lower}'
    assert plan['work_dir'] == f'experiments/pan_{kind}_{lower}'
    assert plan['baseline'] == str(pan_file(family, 'baseline').relative_to(REPO_ROOT))
    vespcn = {**_plan_runs(load_yaml(str(PAN / 'plan_compare_pan.yml'))),
              **_plan_runs(load_yaml(str(PAN / 'plan_validate_pan_study.yml')))}
    runs = _plan_runs(plan)
    for label, run in runs.items():
        assert load_yaml(str(REPO_ROOT / run['opt']))['network_g']['type'] == family, run
        if label in vespcn:
            method = Path(vespcn[label]['opt']).name.replace('VESPCNS', f'{family}S')
            assert Path(run['opt']).name == method.replace('_baseline_demo.yml', '_baseline_PAN.yml'), label
            assert run.get('force_yml') == vespcn[label].get('force_yml'), label
    assert {'baseline', 'STD', 'STD_late', 'output_KD'} <= set(runs)
    if kind == 'compare':  # the final runs: 3,200 iterations, the baseline, STD and the KD baselines
        assert plan['iters'] == 3200 and 'budgets' not in plan
        assert {'AT', 'FitNets'} <= set(runs) <= set(vespcn)
    else:  # validation: the VESPCN pair's budget, and a fallback recipe for the baseline and STD
        assert plan['iters'] == ref['iters']
        assert {'baseline_lr4e4', 'STD_lr4e4'} <= set(runs)


@pytest.mark.parametrize('family', PAN_FAMILIES)
@pytest.mark.parametrize('kind', ('validate', 'compare'))
def test_the_harness_accepts_the_pan_family_plans(family, kind):
    """Every run loads, validates with the plan's and its own overrides, and trains on the same data: the harness
    would start (test sets aside, which need the generated data)."""
    from stdsr.tools.comparison.plan import prepare_runs
    plan = load_yaml(str(PAN / f'plan_{kind}_pan_{PAN_FAMILIES[family]}.yml'))
    entries = [dict(run) for run in plan['runs']]
    for entry in entries:
        entry['opt'] = str(REPO_ROOT / entry['opt'])
    runs = prepare_runs({'runs': entries, 'baseline': str(REPO_ROOT / plan['baseline']), 'force_yml': plan['force_yml'],
                         'test_sets': None, 'test_gt': None})
    baselines = [run['label'] for run in runs if run['is_baseline']]  # the baseline file, at either learning rate
    assert baselines == (['baseline', 'baseline_lr4e4'] if kind == 'validate' else ['baseline'])
    assert any('network_t' in run['opt'] for run in runs)


@pytest.fixture(scope='module')
def tiny_pan_teacher(tmp_path_factory):
    """(checkpoint, --force_yml entries): a random 2-block PAN saved as a bare state_dict, as the published file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('pan') / 'pan_tiny.pth'
    torch.save(build_network({'type': 'PAN', 'nb': 2}).state_dict(), path)
    return path, ['network_t:nb=2', f'path:pretrain_network_t={path}']


# every distillation file of every pair: the VESPCN pair's and the two families' of issue 31
PAN_TRAINED = [('VESPCN', method) for method in PAN_FILES] + [(family, method) for family in PAN_FAMILIES
                                                               for method in PAN_FAMILY_FILES if method != 'baseline']


@pytest.mark.parametrize('family, method', PAN_TRAINED, ids=lambda v: v)
def test_a_single_image_teacher_trains_every_student_family(family, method, tiny_demo_root, tmp_path,
                                                            tiny_pan_teacher, one_thread):
    """PAN runs frame by frame ('frame' mode): every term of the PAN study gets one F^SR per frame from it, and the
    F^SR tap, the channel adapters and the balanced weights work unchanged whatever the student family."""
    opt_file = pan_file(family, method)
    opt = load_yaml(str(opt_file))
    teacher_path, teacher_force = tiny_pan_teacher
    name = f'pan_{family}_{method}'
    # a calibration window that closes within the run: lambda is measured over 2 steps, then used at step 3
    balance = ['distill:balance:calibration_iters=2'] if 'balance' in opt['distill'] else []
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 3, name) + teacher_force + balance + [
        'logger:save_checkpoint_freq=1000', 'val:val_freq=1000', 'train:warmup_iter=-1'
    ]
    torch.manual_seed(0)
    model = stdsr_train.train_pipeline(['-opt', str(opt_file), '--force_yml', *force], root_path=str(tmp_path))
    log = read_train_log(tmp_path / 'experiments' / name)
    assert logged_iters(log) == [1, 2, 3]
    terms = [f'l_{t}' for t in opt['distill']['losses']]
    for term in terms:
        values = logged_losses(log, term)
        assert len(values) == 3 and all(v == v and v >= 0 for v in values), f'{term}: {values}'
    assert any(v > 0 for term in terms for v in logged_losses(log, term))

    fsr = model.get_bare_model(model.net_g).fsr_channels  # the family's F^SR width (VSRNet 32, the others 16)
    pan_fsr = model.net_t.conv_last.in_channels  # PAN's: unf = 24
    for name, term in model.distill_terms.items():
        loss = term.loss
        if hasattr(loss, 'adapter'):  # the time term's 1x1 adapter: student F^SR width -> teacher's
            assert (loss.adapter.in_channels, loss.adapter.out_channels) == (fsr, pan_fsr)
        if hasattr(loss, 'regressors'):  # FitNets' 1x1 regressor, Overhaul's (+ BN): the same widths
            convs = [r[0] if isinstance(r, torch.nn.Sequential) else r for r in loss.regressors]
            assert [(c.in_channels, c.out_channels) for c in convs] == [(fsr, pan_fsr)]
        if term.balance is not None:  # calibrated over steps 1-2, then held: the weight step 3 used
            lambdas = logged_losses(log, f'{name}_lambda')
            assert term.balance.windows_done == 1 and 0 < term.balance.weight < float('inf')
            assert lambdas[1] == lambdas[2] == pytest.approx(term.balance.weight, rel=1e-3), lambdas


@pytest.mark.parametrize('family', ('VESPCN', *PAN_FAMILIES))
def test_every_pan_pair_taps_f_sr_at_the_teachers_resolution(family):
    """F^SR (what conv_last receives) is an HR map in every family, as in PAN: the space terms compare maps of one
    size, only the widths differ (docs/students.md says what the tap means in each family)."""
    from stdsr.archs.clip_runner import run_clip
    from stdsr.distill.feature_hooks import FSR_TAP, FeatureRecorder
    opt = load_yaml(str(pan_file(family, 'STD')))
    student, teacher = build_network(dict(opt['network_g'])), build_network({'type': 'PAN', 'nb': 1})
    lq = torch.rand(1, 5, 3, 12, 16)
    shapes = []
    for net, mode in ((student, 'sliding'), (teacher, 'frame')):
        with FeatureRecorder(net, [FSR_TAP], detach=True) as recorder, torch.no_grad():
            run_clip(net.eval(), lq, mode, 5 if mode == 'sliding' else None)
        shapes.append(tuple(recorder.records[FSR_TAP][0].shape))
    assert shapes[0][-2:] == shapes[1][-2:] == (48, 64)  # x4 of the LR frame, both networks
    assert shapes[0][0] == shapes[1][0] == 5  # one F^SR per frame of the clip
    assert (shapes[0][1], shapes[1][1]) == (student.fsr_channels, 24)


def test_any_basicsr_image_arch_is_a_teacher_when_declared_frame(tiny_demo_root, tmp_path, one_thread):
    """MSRResNet (no TEMPORAL_MODE of its own) serves as network_t with ``temporal: {network_t: frame}``."""
    torch.manual_seed(0)
    arch = {'type': 'MSRResNet', 'num_feat': 16, 'num_block': 1, 'upscale': 4}
    path = tmp_path / 'msrresnet.pth'
    torch.save({'params': build_network(dict(arch)).state_dict()}, path)
    name = 'msrresnet_teacher'
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 2, name) + [
        'network_t={type: MSRResNet, num_feat: 16, num_block: 1, upscale: 4}', 'temporal={network_t: frame}',
        f'path:pretrain_network_t={path}', 'logger:save_checkpoint_freq=1000', 'val:val_freq=1000'
    ]
    stdsr_train.train_pipeline(['-opt', str(OPTIONS / 'train/STD/pan/train_VESPCNS_STD_PAN.yml'), '--force_yml',
                                *force], root_path=str(tmp_path))
    log = read_train_log(tmp_path / 'experiments' / name)
    assert logged_iters(log) == [1, 2]
    assert len(logged_losses(log, 'l_sd')) == 2 and len(logged_losses(log, 'l_td')) == 2
