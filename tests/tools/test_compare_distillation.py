"""scripts/compare_distillation.py: equal-budget runs, evaluation, table/chart, resumability and refusals."""
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import stdsr  # noqa: F401
from basicsr.archs import build_network
from e2e_helpers import logged_iters
from stdsr.tools import compare_distillation
from stdsr.tools import comparison as distill_comparison

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'options' / 'train' / 'STD' / 'demo'
BASELINE_OPT = str(DEMO / 'train_EDVRS_baseline_demo.yml')
STD_OPT = str(DEMO / 'train_EDVRS_STD_demo.yml')
TINY = {'num_feat': 8, 'deformable_groups': 1, 'num_extract_block': 1, 'num_reconstruct_block': 1}




cd = distill_comparison


def compare_overrides(demo_root):
    """Overrides for every run: tiny networks (the teacher ones are skipped for the plain baseline) and data."""
    nets = [f'{net}:{k}={v}' for net in ('network_g', 'network_t') for k, v in TINY.items()]
    return nets + [
        f'datasets:train:dataroot_gt={demo_root}/train/GT', f'datasets:train:dataroot_lq={demo_root}/train/BIx4',
        f'datasets:train:meta_info_file={demo_root}/meta_info_demo_train.txt', 'datasets:train:gt_size=32',
        'datasets:train:batch_size_per_gpu=1', 'datasets:train:num_frame=3', 'datasets:train:dataset_enlarge_ratio=2',
        f'datasets:val:dataroot_gt={demo_root}/test/GT', f'datasets:val:dataroot_lq={demo_root}/test/BIx4',
        'logger:print_freq=1', 'logger:save_checkpoint_freq=1'
    ]


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A tiny EDVR teacher with random weights, matching the demo network_t shrunk by TINY."""
    torch.manual_seed(0)
    opt = yaml.safe_load(Path(STD_OPT).read_text())['network_t']
    opt.update(TINY)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'params': build_network(opt).state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def compared(tiny_demo_root, teacher_ckpt, tmp_path_factory):
    """Baseline + STD, 2 iterations each, seed 0: the first invocation of the harness."""
    work = tmp_path_factory.mktemp('compare') / 'work'
    argv = ['--opts', BASELINE_OPT, STD_OPT, '--baseline', BASELINE_OPT, '--iters', '2', '--seeds', '0',
            '--work-dir', str(work), '--teacher-ckpt', str(teacher_ckpt),
            '--force-yml', *compare_overrides(tiny_demo_root)]
    assert compare_distillation.main(argv) == 0
    return work, argv


@pytest.mark.slow
def test_runs_train_with_the_budget_and_write_table_and_chart(compared):
    work, _ = compared
    runs = sorted(p.name for p in (work / 'runs').iterdir())
    assert runs == ['EDVRS_STD_demo_seed0_iter2', 'EDVRS_baseline_demo_seed0_iter2']
    for name in runs:
        result = json.loads((work / 'runs' / name / 'result.json').read_text())
        assert result['iters'] == 2 and result['seed'] == 0
        assert 5 < result['metrics']['psnr'] < 60 and 0 < result['metrics']['ssim'] <= 1
        log = next((work / 'runs' / name / 'train').glob('train_*.log')).read_text()
        assert logged_iters(log) == [1, 2]
        assert 'manual_seed: 0' in log
    std_log = next((work / 'runs' / 'EDVRS_STD_demo_seed0_iter2' / 'train').glob('train_*.log')).read_text()
    assert 'l_sd' in std_log and 'l_td' in std_log
    table = (work / 'comparison.md').read_text()
    assert '| EDVRS_baseline_demo | **baseline** | 0 |' in table
    assert '| teacher | *teacher (reference)* |' in table
    assert '| EDVRS_STD_demo |  | 0 |' in table
    assert (work / 'comparison.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    data = json.loads((work / 'comparison.json').read_text())
    base = data['runs'][0]['metrics']['psnr']
    std_row = next(r for r in data['rows'] if r['label'] == 'EDVRS_STD_demo')
    assert std_row['gain_psnr'][0] == pytest.approx(data['runs'][1]['metrics']['psnr'] - base)


@pytest.mark.slow
def test_second_invocation_reuses_finished_runs(compared, capsys):
    work, argv = compared
    results = sorted((work / 'runs').glob('*/result.json'))
    stamps = {p: p.stat().st_mtime_ns for p in results}
    headers = {p: p.read_text().count('=====') for p in (work / 'runs').glob('*/train_stdout.log')}
    capsys.readouterr()
    assert compare_distillation.main(argv) == 0
    out = capsys.readouterr().out
    assert '[compare] trained 0, reused 3, evaluated 0, failed 0' in out
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert {p: p.read_text().count('=====') for p in headers} == headers


def copy_with_unfinished_run(compared, folder, run, trained=False):
    """A copy of the ``compared`` work dir in which ``run`` has not finished (no result.json; with ``trained``
    False no train_done.json either, as if killed while training): (run folder, argv pointing at the copy)."""
    work, argv = compared
    copy = work.parent / folder
    shutil.copytree(work, copy)
    run_dir = copy / 'runs' / run
    (run_dir / 'result.json').unlink()
    if not trained:
        (run_dir / 'train_done.json').unlink()
    return run_dir, [a if a != str(work) else str(copy) for a in argv]


@pytest.mark.slow
def test_interrupted_run_resumes(compared, capsys):
    """A run with saved states but no result (killed before it finished) continues from its latest state."""
    run_dir, argv = copy_with_unfinished_run(compared, 'resumed', 'EDVRS_baseline_demo_seed0_iter2')
    saved = sorted(int(p.stem) for p in (run_dir / 'train' / 'training_states').glob('*.state'))
    capsys.readouterr()
    assert compare_distillation.main(argv) == 0
    assert '[compare] trained 1, reused 2, evaluated 1, failed 0' in capsys.readouterr().out
    assert 'Resuming training from epoch' in (run_dir / 'train_stdout.log').read_text()
    assert (run_dir / 'result.json').is_file()
    # the marker says where this process started, so its wall time is not read as the whole run's cost
    assert saved and json.loads((run_dir / 'train_done.json').read_text())['train_from_iter'] == saved[-1] > 0


def test_gap_closed_arithmetic():
    results = [
        {'label': 'base', 'seed': 0, 'metrics': {'psnr': 30.0, 'ssim': 0.80}},
        {'label': 'base', 'seed': 1, 'metrics': {'psnr': 30.2, 'ssim': 0.82}},
        {'label': 'std', 'seed': 0, 'metrics': {'psnr': 30.5, 'ssim': 0.81}},
        {'label': 'std', 'seed': 1, 'metrics': {'psnr': 30.5, 'ssim': 0.83}},
    ]
    rows = cd.summarize(results, 'base', {'psnr': 31.1, 'ssim': 0.86})
    base, std, teacher = rows
    assert base['role'] == 'baseline' and teacher['role'] == 'teacher'
    assert base['psnr'][0] == pytest.approx(30.1) and base['psnr'][1] == pytest.approx(0.1414214, rel=1e-5)
    assert std['gain_psnr'][0] == pytest.approx(0.4) and std['gain_psnr'][1] == pytest.approx(0.1414214, rel=1e-5)
    assert std['gap_psnr'] == pytest.approx(0.4 / 1.0)  # (30.5 - 30.1) / (31.1 - 30.1)
    assert std['gap_ssim'] == pytest.approx(0.01 / 0.05)
    assert base['gap_psnr'] == pytest.approx(0.0)
    table = cd.format_table(rows)
    assert '| std |  | 0, 1 | 30.500 | 0.8200 ± 0.0141 | +0.400 ± 0.141 | +0.0100 | 40.0% | 20.0% |' in table
    # no gap when the teacher is not better than the baseline, nor without a teacher
    assert cd.summarize(results, 'base', {'psnr': 30.0, 'ssim': 0.9})[1]['gap_psnr'] is None
    assert cd.summarize(results, 'base')[1]['gap_psnr'] is None


def test_schedule_is_stretched_to_the_budget():
    opt = {'train': {'total_iter': 600000, 'scheduler': {'type': 'CosineAnnealingRestartLR',
                                                         'periods': [50000, 100000, 150000, 150000, 150000]}}}
    assert cd.schedule_overrides(opt, 6000) == ['train:scheduler:periods=[500, 1000, 1500, 1500, 1500]']
    assert cd.schedule_overrides(opt, 600000) == []
    multi = {'train': {'total_iter': 100, 'scheduler': {'type': 'MultiStepLR', 'milestones': [50, 75]}}}
    assert cd.schedule_overrides(multi, 10) == ['train:scheduler:milestones=[5, 8]']


def test_missing_option_file_is_refused(tmp_path, capsys):
    missing = str(tmp_path / 'nope.yml')
    assert compare_distillation.main(['--opts', BASELINE_OPT, missing, '--work-dir', str(tmp_path / 'w')]) == 1
    assert f"option file(s) not found: {tmp_path / 'nope.yml'}" in capsys.readouterr().err
    assert not (tmp_path / 'w').exists()


def test_mismatched_data_is_refused_before_training(tiny_demo_root, teacher_ckpt, tmp_path, capsys):
    other = tmp_path / 'other.yml'
    text = Path(STD_OPT).read_text().replace('gt_size: 48', 'gt_size: 96')
    assert text != Path(STD_OPT).read_text()
    other.write_text(text)
    force = [f for f in compare_overrides(tiny_demo_root) if 'gt_size' not in f]
    argv = ['--opts', BASELINE_OPT, str(other), '--iters', '2', '--work-dir', str(tmp_path / 'w'), '--teacher-ckpt',
            str(teacher_ckpt), '--force-yml', *force]
    assert compare_distillation.main(argv) == 1
    err = capsys.readouterr().err
    assert 'runs must use the same data' in err and 'train.gt_size: 48 vs 96' in err and str(other) in err
    assert not (tmp_path / 'w').exists()


@pytest.mark.slow
def test_a_run_another_harness_holds_is_refused_without_touching_it(compared, capsys):
    """Two harnesses asking for one unfinished run: the second is refused in one line before it writes anything
    (not even a header in the run's train_stdout.log), and the first one's files stay as they were."""
    from stdsr.runtime.run_lock import RunLock
    run_dir, argv = copy_with_unfinished_run(compared, 'held', 'EDVRS_baseline_demo_seed0_iter2')
    log_before = (run_dir / 'train_stdout.log').read_text()
    capsys.readouterr()
    with RunLock(str(run_dir), 'comparison run'):  # what a running harness holds while it trains and evaluates
        assert compare_distillation.main(argv) == 1
    err = capsys.readouterr().err
    assert 'comparison run' in err and 'is in use by pid' in err and str(run_dir) in err
    assert (run_dir / 'train_stdout.log').read_text() == log_before
    assert not (run_dir / 'result.json').exists() and not (run_dir / 'train_done.json').exists()
    capsys.readouterr()
    assert compare_distillation.main(argv) == 0  # once it is free the run resumes
    assert (run_dir / 'result.json').is_file()


@pytest.mark.slow
def test_report_only_reports_finished_runs_and_trains_nothing(compared, tmp_path, capsys):
    """--report-only: the tables come from the finished runs alone; an unfinished one is listed as not run and
    nothing is trained or evaluated again; a work dir with no finished run is refused in one line."""
    run_dir, argv = copy_with_unfinished_run(compared, 'report_only', 'EDVRS_STD_demo_seed0_iter2', trained=True)
    copy = run_dir.parent.parent
    logs = {p: p.read_text() for p in (copy / 'runs').glob('*/train_stdout.log')}
    capsys.readouterr()
    assert compare_distillation.main(argv + ['--report-only']) == 0
    out = capsys.readouterr().out
    assert '[compare] trained 0, reused 2, evaluated 0, failed 0, not run 1' in out  # the baseline and the teacher
    assert not (run_dir / 'result.json').exists()
    assert {p: p.read_text() for p in logs} == logs
    data = json.loads((copy / 'comparison.json').read_text())
    assert data['not_run'] == ['EDVRS_STD_demo_seed0_iter2']
    assert [r['label'] for r in data['runs']] == ['EDVRS_baseline_demo']
    md = (copy / 'comparison.md').read_text()
    assert 'Not run (no finished result in this work dir): EDVRS_STD_demo_seed0_iter2.' in md
    assert '| EDVRS_baseline_demo | **baseline** | 0 |' in md and '| EDVRS_STD_demo |' not in md
    empty = [a if a != str(compared[0]) else str(tmp_path / 'empty') for a in compared[1]]
    assert compare_distillation.main(empty + ['--report-only']) == 1
    assert '--report-only: no finished run of this plan in' in capsys.readouterr().err
    assert not (tmp_path / 'empty').exists()


@pytest.mark.slow
def test_failed_run_shows_the_tail_of_its_log(tiny_demo_root, tmp_path, capsys):
    bad_meta = tmp_path / 'meta.txt'
    bad_meta.write_text('no_such_clip 8 (64,64,3)\n')
    force = compare_overrides(tiny_demo_root) + [f'datasets:train:meta_info_file={bad_meta}']
    argv = ['--opts', BASELINE_OPT, '--iters', '2', '--work-dir', str(tmp_path / 'w'), '--force-yml', *force]
    assert compare_distillation.main(argv) == 1
    err = capsys.readouterr().err
    assert "run 'EDVRS_baseline_demo_seed0_iter2'" in err and 'failed with exit code' in err
    assert 'no_such_clip' in err and 'train_stdout.log' in err
    assert not (tmp_path / 'w' / 'runs' / 'EDVRS_baseline_demo_seed0_iter2' / 'result.json').exists()


def test_plan_file_and_unknown_plan_keys(tmp_path):
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({'runs': [{'opt': STD_OPT, 'label': 'STD'}], 'baseline': BASELINE_OPT,
                                    'seeds': [1, 2], 'iters': 5, 'work_dir': str(tmp_path / 'w')}))
    settings = cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan), '--seeds', '3']))
    assert [r['label'] for r in settings['runs']] == ['EDVRS_baseline_demo', 'STD']
    assert settings['seeds'] == [3] and settings['iters'] == 5 and settings['baseline'] == BASELINE_OPT
    plan.write_text(yaml.safe_dump({'runs': [STD_OPT], 'seed': [1]}))
    with pytest.raises(cd.CompareError, match=r"unknown plan key\(s\) \['seed'\]"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))


def test_paired_to_names_existing_run_labels(tmp_path):
    """`paired_to: [output_KD]`: the labels are checked against the plan's runs before anything is trained."""
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({'runs': [{'opt': STD_OPT, 'label': 'STD'}], 'baseline': BASELINE_OPT,
                                    'paired_to': ['STD'], 'work_dir': str(tmp_path / 'w')}))
    settings = cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    assert settings['paired_to'] == ['STD']
    for value, said in ((['output_KD'], r"\['output_KD'\]: no such run label"),
                        ('STD', 'must be a list of run labels')):
        plan.write_text(yaml.safe_dump({'runs': [{'opt': STD_OPT, 'label': 'STD'}], 'baseline': BASELINE_OPT,
                                        'paired_to': value}))
        with pytest.raises(cd.CompareError, match=f"plan key 'paired_to' in {plan}.*{said}"):
            cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    with pytest.raises(cd.CompareError, match=r"--paired-to \['KD'\]: no such run label"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan), '--paired-to', 'KD']))
    assert not (tmp_path / 'w').exists()


def test_methods_are_paired_with_a_kd_baseline_seed_by_seed_against_the_baseline_spread():
    """STD must be ahead of output KD too: every other method (not the baseline) paired with it per seed; the spread
    a gain must exceed stays the baseline's."""
    psnr = {('base', 0): 30.0, ('base', 1): 30.4, ('kd', 0): 30.2, ('kd', 1): 30.3, ('std', 0): 30.1, ('std', 1): 30.5}
    results = [{'label': label, 'seed': seed, 'metrics': {'psnr': value}} for (label, seed), value in psnr.items()]
    spread = cd.paired_differences(results, 'base')['baseline_spread']
    tables = cd.paired_to_references(results, 'base', ['kd', 'base', 'absent'], spread)
    assert list(tables) == ['kd']
    (row, ) = tables['kd']['rows']
    assert row['label'] == 'std' and row['ahead'] == 1
    assert row['diffs'][0] == pytest.approx(-0.1) and row['diffs'][1] == pytest.approx(0.2)
    assert tables['kd']['baseline_spread'] == pytest.approx(0.2828427, rel=1e-5)  # the baseline's, not kd's
    text = cd.format_paired(tables['kd'], baseline_label='kd', against='kd')
    assert 'difference to `kd` (same seed)' in text and '| std | -0.100 | +0.200 | 1/2 | +0.050 |' in text


def test_paired_differences_count_seeds_ahead_against_the_baseline_spread():
    results = [
        {'label': 'base', 'seed': 0, 'metrics': {'psnr': 30.0}},
        {'label': 'base', 'seed': 1, 'metrics': {'psnr': 30.4}},
        {'label': 'std', 'seed': 0, 'metrics': {'psnr': 30.1}},
        {'label': 'std', 'seed': 1, 'metrics': {'psnr': 30.3}},
    ]
    paired = cd.paired_differences(results, 'base')
    (row, ) = paired['rows']
    assert row['label'] == 'std' and row['ahead'] == 1
    assert row['diffs'][0] == pytest.approx(0.1) and row['diffs'][1] == pytest.approx(-0.1)
    assert row['mean'] == pytest.approx(0.0) and paired['baseline_spread'] == pytest.approx(0.2828427, rel=1e-5)
    text = cd.format_paired(paired)
    assert '| std | +0.100 | -0.100 | 1/2 | +0.000 |' in text and 'spread of the baseline (std): 0.283 dB' in text
    alone = cd.format_paired(cd.paired_differences([r for r in results if r['label'] == 'base'], 'base'))
    assert 'no other method was run' in alone and '| method |' not in alone
    assert 'spread of the baseline (std): 0.283 dB' in alone


def test_test_sets_from_flags_and_plan(tmp_path):
    for sub in ('a/GT', 'a/LQ'):
        (tmp_path / sub).mkdir(parents=True)
    gt, lq = tmp_path / 'a' / 'GT', tmp_path / 'a' / 'LQ'
    sets = cd.parse_test_sets([f'real={gt}:{lq}'], None, None)
    assert sets == {'real': (str(gt), str(lq))}
    assert cd.parse_test_sets(None, {'demo': {'gt': str(gt), 'lq': str(lq)}}, 'p.yml') == {'demo': (str(gt), str(lq))}
    with pytest.raises(cd.CompareError, match='NAME=GT_ROOT:LQ_ROOT'):
        cd.parse_test_sets(['real'], None, None)
    with pytest.raises(cd.CompareError, match=r'test set real: no such folder .*nope'):
        cd.parse_test_sets([f'real={gt}:{tmp_path}/nope'], None, None)
    with pytest.raises(cd.CompareError, match=r'p.yml: test_sets.demo must be'):
        cd.parse_test_sets(None, {'demo': {'gt': str(gt)}}, 'p.yml')
    opt = {'datasets': {'val': {'name': 'v'}}}
    settings = {'test_sets': sets, 'test_gt': None}
    assert list(cd.eval_datasets(opt, settings, 'x.yml')) == ['real']
    assert list(cd.eval_datasets(opt, {'test_sets': {}, 'test_gt': None}, 'x.yml')) == ['v']


@pytest.mark.slow
def test_budget_axis_trains_each_budget_and_reports_gain_against_budget(compared, capsys):
    """Budgets [1, 2]: the 2-iteration runs of ``compared`` are reused, the 1-iteration ones trained with their
    own schedule; gain_vs_budget.md/png and per-budget tables are written."""
    work, argv = compared
    copy = work.parent / 'budgets'
    shutil.copytree(work, copy)
    argv = [a if a != str(work) else str(copy) for a in argv]
    i = argv.index('--iters')
    argv = argv[:i] + ['--budgets', '2', '1'] + argv[i + 2:]
    capsys.readouterr()
    assert compare_distillation.main(argv) == 0
    assert '[compare] trained 2, reused 3, evaluated 2, failed 0' in capsys.readouterr().out
    log = next((copy / 'runs' / 'EDVRS_baseline_demo_seed0_iter1' / 'train').glob('train_*.log')).read_text()
    assert logged_iters(log) == [1]
    data = json.loads((copy / 'comparison.json').read_text())
    assert data['budgets'] == [1, 2] and data['iters'] == 2 and set(data['by_budget']) == {'1', '2'}
    runs = {(r['label'], r['iters']): r['metrics']['psnr'] for r in data['runs']}
    text = (copy / 'gain_vs_budget.md').read_text()
    gain1 = runs[('EDVRS_STD_demo', 1)] - runs[('EDVRS_baseline_demo', 1)]
    gain2 = runs[('EDVRS_STD_demo', 2)] - runs[('EDVRS_baseline_demo', 2)]
    assert f'| EDVRS_STD_demo | {gain1:+.3f} ± 0.000 ({int(gain1 > 0)}/1) | {gain2:+.3f} ± 0.000' in text
    assert (copy / 'gain_vs_budget.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    md = (copy / 'comparison.md').read_text()
    assert '## 1 iterations per run' in md and '## 2 iterations per run' in md
    assert 'Bicubic up-sampling of this set' in md
    # both bicubic references, each named by its resampler: the students' own path and the paper's MATLAB one
    refs = next(iter(data['test_sets'].values()))
    torch_db, matlab_db = refs['bicubic_psnr'], refs['bicubic_matlab_psnr']
    assert abs(torch_db - matlab_db) > 1e-3
    assert f'(`F.interpolate` bicubic, the residual students\' own path): {torch_db:.3f} dB' in md
    assert f'MATLAB-style bicubic (the paper\'s and `make demo`\'s "Bicubic" row): {matlab_db:.3f} dB' in md


@pytest.mark.slow
def test_run_budgets_and_only_select_what_is_trained(compared, capsys):
    """A plan run with its own ``budgets`` is trained only at those; ``--only`` trains and reports only the
    named labels, and a later call without it reuses their results."""
    work, argv = compared
    copy = work.parent / 'run_budgets'
    shutil.copytree(work, copy)
    plan = copy.parent / 'plan_run_budgets.yml'
    plan.write_text(yaml.safe_dump({
        'work_dir': str(copy), 'seeds': [0], 'budgets': [1, 2], 'baseline': BASELINE_OPT,
        'runs': [{'opt': BASELINE_OPT, 'label': 'EDVRS_baseline_demo'},
                 {'opt': STD_OPT, 'label': 'EDVRS_STD_demo', 'budgets': [2]}]}))
    rest = argv[argv.index('--teacher-ckpt'):]
    capsys.readouterr()
    assert compare_distillation.main(['--plan', str(plan), '--only', 'EDVRS_baseline_demo', *rest]) == 0
    assert '[compare] trained 1, reused 1, evaluated 1, failed 0' in capsys.readouterr().out  # no teacher row
    # only runs without a teacher: the teacher checkpoint is not needed (it may still be training)
    no_teacher = ['--teacher-ckpt', 'nope.pth']
    assert compare_distillation.main(['--plan', str(plan), '--only', 'EDVRS_baseline_demo', *rest, *no_teacher]) == 0
    assert '[compare] trained 0, reused 2, evaluated 0, failed 0' in capsys.readouterr().out
    assert compare_distillation.main(['--plan', str(plan), '--only', 'EDVRS_STD_demo', *rest, *no_teacher]) != 0
    assert 'teacher checkpoint not found: nope.pth' in capsys.readouterr().err
    assert compare_distillation.main(['--plan', str(plan), *rest]) == 0
    assert '[compare] trained 0, reused 4, evaluated 0, failed 0' in capsys.readouterr().out
    assert not (copy / 'runs' / 'EDVRS_STD_demo_seed0_iter1').exists()
    text = (copy / 'gain_vs_budget.md').read_text()
    assert '| EDVRS_STD_demo | — |' in text
    # --budgets selects among the plan's budgets: the STD run (budgets [2]) is not trained at budget 1 alone
    assert compare_distillation.main(['--plan', str(plan), '--budgets', '1', *rest]) == 0
    assert '[compare] trained 0, reused 2, evaluated 0, failed 0' in capsys.readouterr().out
    with pytest.raises(cd.CompareError, match=r"--only \['nope'\]: no such run label"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan), '--only', 'nope']))
    plan.write_text(yaml.safe_dump({'seeds': [0], 'budgets': [1, 2],
                                    'runs': [{'opt': STD_OPT, 'label': 'std', 'budgets': [3]}]}))
    with pytest.raises(cd.CompareError, match=r"plan run std: budgets must be a non-empty list of the plan's budgets"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))


def test_budgets_are_checked(tmp_path):
    args = cd.build_arg_parser().parse_args(['--opts', BASELINE_OPT, '--budgets', '800', '800'])
    with pytest.raises(cd.CompareError, match='distinct positive'):
        cd.resolve_settings(args)
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({'runs': [BASELINE_OPT], 'budgets': [3200, 800], 'iters': 5}))
    with pytest.raises(cd.CompareError, match='either budgets'):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    plan.write_text(yaml.safe_dump({'runs': [BASELINE_OPT], 'budgets': [3200, 800]}))
    assert cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))['budgets'] == [800, 3200]
    settings = cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan), '--iters', '7']))
    assert settings['budgets'] is None and settings['iters'] == 7


def test_schedule_is_stretched_per_budget():
    opt = {'train': {'total_iter': 800, 'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [800]}}}
    assert cd.schedule_overrides(opt, 3200) == ['train:scheduler:periods=[3200]']
    assert cd.schedule_overrides(opt, 3) == ['train:scheduler:periods=[3]']


def test_plateau_runs_are_flagged_next_to_their_gain():
    results = [{'label': 'base', 'seed': s, 'metrics': {'psnr': p, 'ssim': 0.5}}
               for s, p in ((0, 28.50), (1, 28.05))] + \
              [{'label': 'std', 'seed': s, 'metrics': {'psnr': p, 'ssim': 0.5}} for s, p in ((0, 28.60), (1, 28.40))]
    flagged = cd.budget_axis.plateau_runs(results, 28.0)
    assert flagged == {'base': [1]}
    rows = cd.summarize(results, 'base')
    table = cd.format_table(rows, 'demo', 800, flagged, 'base')
    assert '| std |  | 0, 1 | 28.500 ± 0.141 | 0.5000 | +0.225 ± 0.177 ⚑ plateau: baseline seed 1 |' in table
    paired = cd.format_paired(cd.paired_differences(results, 'base'), flagged=flagged, baseline_label='base')
    assert '| std | +0.100 | +0.350 ⚑ |' in paired
    note = cd.budget_axis.plateau_note(28.0, flagged)
    assert '28.000 dB' in note and 'base seed 1' in note
    assert 'No run' in cd.budget_axis.plateau_note(27.0, cd.budget_axis.plateau_runs(results, 27.0))


def test_a_plan_run_may_add_its_own_overrides(tmp_path):
    """A run's own ``force_yml`` applies after the plan's and to that run only: one file serves two variants."""
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump({
        'seeds': [0], 'force_yml': ['distill:losses:td:pool=2'],
        'runs': [{'opt': STD_OPT, 'label': 'std'},
                 {'opt': STD_OPT, 'label': 'std_clip', 'force_yml': ['distill:losses:td:standardize=clip',
                                                                   'distill:losses:td:pool=1']}]}))
    settings = cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    runs = {run['label']: run for run in cd.prepare_runs(settings)}
    assert 'standardize' not in runs['std']['opt']['distill']['losses']['td']
    assert runs['std']['opt']['distill']['losses']['td']['pool'] == 2
    assert runs['std_clip']['opt']['distill']['losses']['td']['standardize'] == 'clip'
    assert runs['std_clip']['opt']['distill']['losses']['td']['pool'] == 1  # the run's own entry comes last
    assert runs['std_clip']['user_force'][-1] == 'distill:losses:td:pool=1'
    plan.write_text(yaml.safe_dump({'seeds': [0], 'runs': [{'opt': STD_OPT, 'label': 'std', 'force_yml': 'pool=1'}]}))
    with pytest.raises(cd.CompareError, match=r"plan run std: force_yml must be a list of 'KEY=VALUE' strings"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))


def test_a_label_with_a_hash_reaches_training_as_data_not_as_yaml_text(tmp_path):
    """Issue 33, item 4: ' #' starts a YAML comment; the harness's overrides must keep the whole label and path."""
    from stdsr.config.options import apply_force_yml, load_yaml

    opt = load_yaml(BASELINE_OPT)
    settings = {'train_val': False, 'teacher_ckpt': None}
    exp_root = str(tmp_path / 'w #1' / 'runs' / 'my run #2_seed0_iter4' / 'train')
    name = cd.run_name('my run #2', 0, 4)
    apply_force_yml(opt, cd.harness_overrides(opt, name, 0, 4, exp_root, settings))
    assert opt['name'] == 'my run #2_seed0_iter4'
    assert opt['path']['experiments_root'] == exp_root
    assert opt['manual_seed'] == 0 and opt['train']['total_iter'] == 4


def test_gain_chart_with_no_method_line_raises_no_warning(tmp_path):
    """Only the baseline trained at each budget: an empty chart, and no matplotlib warning about its legend."""
    chart = tmp_path / 'gain_vs_budget.png'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        distill_comparison.budget_axis.plot_gains_by_budget({200: {}, 800: {'demo': {'paired': None}}}, 'demo',
                                                            str(chart))
    assert chart.is_file() and chart.stat().st_size > 0


def test_committed_records_carry_a_study_into_a_new_work_dir(compared, tmp_path, capsys):
    """--records: every finished run (and the teacher) gets a small record without machine-local paths; a fresh
    work dir (another session, another clone) reuses them instead of training, and --report-only rebuilds the
    report from records alone; a record made with another configuration is refused in one line."""
    work, argv = compared
    records = tmp_path / 'records'
    capsys.readouterr()
    assert compare_distillation.main(argv + ['--records', str(records)]) == 0  # finished runs get their records
    assert '[compare] trained 0, reused 3' in capsys.readouterr().out
    assert sorted(p.name for p in records.iterdir()) == ['EDVRS_STD_demo_seed0_iter2.json',
                                                         'EDVRS_baseline_demo_seed0_iter2.json', 'teacher.json']
    std = json.loads((records / 'EDVRS_STD_demo_seed0_iter2.json').read_text())
    result = json.loads((work / 'runs' / 'EDVRS_STD_demo_seed0_iter2' / 'result.json').read_text())
    assert std['config'] == result['config'] and std['evals'] == result['evals'] and 'checkpoint' not in std
    assert std['opt_file'] == 'options/train/STD/demo/train_EDVRS_STD_demo.yml' or not std['opt_file'].startswith('/')
    assert 'manual_seed=0' in std['force_yml'] and 'train:total_iter=2' in std['force_yml']
    assert set(std['term_shares']['mean']) == {'sd', 'td'}  # each term's share of the pixel loss over training
    assert [row['iter'] for row in std['term_shares']['by_iter']] == [1, 2]
    base = json.loads((records / 'EDVRS_baseline_demo_seed0_iter2.json').read_text())
    assert base['term_shares'] == {'mean': {}, 'by_iter': []}
    made = std['made_with']  # what the digest does not cover: the code's commit, the versions, the training time
    assert made['torch'] == torch.__version__ and made['train_seconds'] > 0 and made['train_from_iter'] == 0
    assert made['commit'] is None or re.fullmatch(r'[0-9a-f]{40}(\+changes)?', made['commit'])
    std['made_with']['commit'] = 'the commit that made it'
    (records / 'EDVRS_STD_demo_seed0_iter2.json').write_text(json.dumps(std))
    assert compare_distillation.main(argv + ['--records', str(records)]) == 0  # reused again: the record stays
    assert json.loads((records / 'EDVRS_STD_demo_seed0_iter2.json').read_text()) == std

    fresh = [a if a != str(work) else str(tmp_path / 'fresh') for a in argv] + ['--records', str(records)]
    assert compare_distillation.main(fresh) == 0
    assert '[compare] trained 0, reused 3, evaluated 0, failed 0' in capsys.readouterr().out
    assert not (tmp_path / 'fresh' / 'runs').exists()  # nothing trained, nothing evaluated
    assert (tmp_path / 'fresh' / 'comparison.md').read_text() == (work / 'comparison.md').read_text()

    only_records = [a if a != str(work) else str(tmp_path / 'report') for a in argv] + ['--records', str(records)]
    assert compare_distillation.main(only_records + ['--report-only']) == 0
    assert (tmp_path / 'report' / 'comparison.md').read_text() == (work / 'comparison.md').read_text()

    std['config']['seed'] = 7  # as if the option file had changed since the record was made
    (records / 'EDVRS_STD_demo_seed0_iter2.json').write_text(json.dumps(std))
    capsys.readouterr()
    other = [a if a != str(work) else str(tmp_path / 'other') for a in argv] + ['--records', str(records)]
    assert compare_distillation.main(other) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'EDVRS_STD_demo_seed0_iter2.json records run' in err[0]


def test_configuration_digests_do_not_depend_on_where_the_clone_lives(tmp_path, monkeypatch):
    """Records are matched by digest: the same relative layout gives the same digest in another folder."""
    monkeypatch.chdir(tmp_path)
    here = cd.digest({'path': str(tmp_path / 'datasets' / 'x.lmdb'), 'lr': 1e-3, 'up': str(tmp_path.parent / 's')})
    other = tmp_path / 'elsewhere' / 'clone'
    other.mkdir(parents=True)
    monkeypatch.chdir(other)
    there = cd.digest({'path': str(other / 'datasets' / 'x.lmdb'), 'lr': 1e-3, 'up': str(other.parent / 's')})
    assert here == there
    assert cd.digest({'path': str(other / 'datasets' / 'y.lmdb'), 'lr': 1e-3, 'up': str(other.parent / 's')}) != there


@pytest.mark.parametrize('plan_values, said', [
    ({'runs': [7]}, r"plan key 'runs' must be a list of option files or \{opt: FILE, label: NAME\} mappings, "
                    r'got \[7\]'),
    ({'runs': [BASELINE_OPT], 'seeds': 3}, r"plan key 'seeds' must be a list of integers in \[0, \d+\), got 3"),
    ({'runs': [BASELINE_OPT], 'iters': 'many'}, r"plan key 'iters' must be a positive integer, got 'many'"),
])
def test_a_malformed_plan_value_is_one_line_naming_the_plan_and_key(tmp_path, capsys, plan_values, said):
    """`runs: [7]` and `seeds: 3` ended in tracebacks."""
    plan = tmp_path / 'plan.yml'
    plan.write_text(yaml.safe_dump(plan_values))
    assert compare_distillation.main(['--plan', str(plan), '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err
    assert re.search(rf'^error: {re.escape(str(plan))}: {said}\n$', err), err
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('which', ['runs/EDVRS_baseline_demo_seed0_iter2', 'teacher'])
def test_a_truncated_result_json_is_one_line_naming_the_file(compared, capsys, which):
    """A truncated result.json of a run or of the teacher blocked the study with a 30-line traceback."""
    work, argv = compared
    copy = work.parent / f"truncated_{which.split('/')[0]}"
    shutil.copytree(work, copy)
    result = copy / which / 'result.json'
    result.write_text(result.read_text()[:40])
    capsys.readouterr()
    assert compare_distillation.main([a if a != str(work) else str(copy) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'error: {result} is not a readable result (') and err.count('\n') == 1, err
    assert 'remove it to evaluate that run again' in err and len(result.read_text()) == 40


def test_a_plan_that_is_not_yaml_is_one_line_naming_the_file_and_line(tmp_path, capsys):
    """A malformed plan ended in a 54-line traceback (one line since the one safe YAML reader)."""
    plan = tmp_path / 'plan.yml'
    plan.write_text('runs: [a\nseeds: 1\n')
    assert compare_distillation.main(['--plan', str(plan), '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'error: {plan}: line 2: not valid YAML: ') and err.count('\n') == 1, err
