"""scripts/family_table.py: studies in, one table out, with parameters and runtime measured by the profiler."""
from pathlib import Path

import pytest

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.archs import build_network
from e2e_helpers import load_script
from stdsr.config.options import load_yaml
from stdsr.tools.comparison import records
from stdsr.tools.comparison.plan import run_name
from stdsr.utils.modules import count_parameters

REPO_ROOT = Path(__file__).resolve().parents[2]
PAN = 'options/train/STD/pan'
family_table = load_script('family_table')


def write_records(folder, family, baseline_file):
    """Records of a baseline and an STD run of one PAN pair, as the harness writes them (paths from the repo root)."""
    std_file = f'{PAN}/train_{family}S_STD_PAN.yml'
    for label, opt_file, psnr in (('baseline', baseline_file, 28.0), ('STD', std_file, 28.2)):
        for seed in (0, 1):
            records.write_record(str(folder), run_name(label, seed, 3200), {
                'label': label, 'seed': seed, 'iters': 3200, 'baseline': label == 'baseline', 'opt_file': opt_file,
                'force_yml': ['datasets:train:dataset_enlarge_ratio=20'],
                'evals': {'demo': {'metrics': {'psnr': psnr + seed / 10, 'ssim': 0.8}}}})
    return f'{family}={folder}'


@pytest.fixture
def studies(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # records name option files relative to the repository root, where studies run
    return [write_records(tmp_path / 'vespcn', 'VESPCN', 'options/train/STD/demo/train_VESPCNS_baseline_demo.yml'),
            write_records(tmp_path / 'vsrnet', 'VSRNet', f'{PAN}/train_VSRNetS_baseline_PAN.yml')]


FAST = ['--shape', '5', '3', '8', '8', '--repeats', '1', '--warmup', '0', '--threads', '1', '--device', 'cpu']


def test_the_table_counts_each_students_and_the_teachers_parameters(studies, tmp_path, capsys):
    out = tmp_path / 'table.md'
    args = [arg for study in studies for arg in ('--study', study)]
    assert family_table.main(args + ['--teacher-label', 'PAN x4', '--output', str(out)] + FAST) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    body = {line.split('|')[1].strip(): line for line in text.splitlines() if line.startswith('| ')}
    for name, opt_file in (('VESPCN', 'options/train/STD/demo/train_VESPCNS_baseline_demo.yml'),
                           ('VSRNet', f'{PAN}/train_VSRNetS_baseline_PAN.yml')):
        params = count_parameters(build_network(dict(load_yaml(opt_file)['network_g'])))
        assert f'| {name} | {params:,} |' in body[name]
    pan = count_parameters(build_network(dict(load_yaml(f'{PAN}/train_VSRNetS_STD_PAN.yml')['network_t'])))
    assert f'| *PAN x4* | {pan:,} |' in body['*PAN x4*']
    assert 'LR input 8×8' in text and '| +STD |' in text


def test_bad_input_is_one_line_and_nothing_is_overwritten(studies, tmp_path, capsys):
    out = tmp_path / 'table.md'
    out.write_text('kept')
    assert family_table.main(['--study', studies[0], '--output', str(out), '--no-cost']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'family_table: error: --output' in err and 'exists' in err
    assert out.read_text() == 'kept'
    assert family_table.main(['--study', 'VESPCN', '--no-cost']) == 2
    assert 'expected STUDENT=RECORDS_FOLDER_OR_COMPARISON_JSON' in capsys.readouterr().err
    assert family_table.main(['--study', studies[0], '--no-cost', '--overwrite', '--output', str(out)]) == 0
    assert '| VESPCN | — | — |' in out.read_text()
