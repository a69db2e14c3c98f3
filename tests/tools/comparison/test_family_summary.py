"""The paper-layout summary over several studies, built from synthetic harness records and comparison.json files."""
import json
import statistics

import pytest

from stdsr.errors import CompareError
from stdsr.tools.comparison import records
from stdsr.tools.comparison.family_summary import AHEAD_MARK, family_table, load_study
from stdsr.tools.comparison.plan import run_name

SEEDS = (0, 1, 2)


def record(label, seed, iters, psnr, baseline=False, sets=('demo', )):
    """A run record as the harness writes it (records.make_record of a result), with the same PSNR on every set."""
    return {'label': label, 'seed': seed, 'iters': iters, 'baseline': baseline, 'opt_file': f'{label}.yml',
            'force_yml': [], 'config': {'seed': seed, 'iters': iters},
            'evals': {name: {'dataset': name, 'metrics': {'psnr': psnr, 'ssim': psnr / 40}, 'per_clip': {}}
                      for name in sets}}


def write_study(folder, values, iters=3200, teacher=29.5, sets=('demo', )):
    """A records folder: ``values`` {label: [psnr per seed]} ('baseline' is the plan's baseline) and teacher.json."""
    for label, per_seed in values.items():
        for seed, psnr in zip(SEEDS, per_seed):
            records.write_record(str(folder), run_name(label, seed, iters),
                                 record(label, seed, iters, psnr, label == 'baseline', sets))
    if teacher is not None:
        records.write_record(str(folder), 'teacher', {'label': 'teacher', 'evals': {
            name: {'metrics': {'psnr': teacher, 'ssim': teacher / 40}} for name in sets}})
    return str(folder)


def cell(values, digits=3):
    return f'{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}'


def rows(table):
    """{first cell: cells} of the markdown table's body."""
    lines = [line for line in table.splitlines() if line.startswith('| ')][1:]
    return {cells[0]: cells for cells in ([c.strip() for c in line.strip('|').split('|')] for line in lines)}


BASE = [28.0, 28.1, 28.2]
STD_CLEAR = [28.3, 28.35, 28.5]  # ahead in every seed by more than the baseline's spread (0.1)
KD_MIXED = [28.05, 28.05, 28.3]  # ahead in 2 seeds of 3


def test_one_row_per_study_with_spread_paired_gain_seeds_ahead_and_teacher(tmp_path):
    vespcn = write_study(tmp_path / 'vespcn', {'baseline': BASE, 'STD': STD_CLEAR, 'output_KD': KD_MIXED})
    write_study(tmp_path / 'vespcn', {'baseline': [20.0] * 3, 'STD': [30.0] * 3}, iters=800)  # a shorter budget too
    vsrnet = write_study(tmp_path / 'vsrnet', {'AT': KD_MIXED, 'baseline': BASE, 'STD': KD_MIXED}, teacher=29.25)
    table = family_table([load_study('VESPCN', vespcn), load_study('VSRNet', vsrnet)],
                         costs={'VESPCN': (104955, 34.04), 'VSRNet': (274051, 635.3)})
    header, body = table.splitlines()[0], rows(table)
    # STD first, the KD methods in the order the studies name them (records come in file-name order)
    assert header == '| student | parameters | runtime (ms/frame) | baseline | +STD | +output_KD | +AT | teacher |'
    gain = statistics.mean(s - b for s, b in zip(STD_CLEAR, BASE))
    assert body['VESPCN'] == ['VESPCN', '104,955', '34.0', cell(BASE), f'{cell(STD_CLEAR)} (+{gain:.3f}, 3/3 '
                              f'{AHEAD_MARK})', body['VESPCN'][5], '—', '29.500']
    mixed = statistics.mean(k - b for k, b in zip(KD_MIXED, BASE))
    assert body['VESPCN'][5] == f'{cell(KD_MIXED)} ({mixed:+.3f}, 2/3)'  # no mark: not ahead in every seed
    assert body['VSRNet'][4] == body['VESPCN'][5] == body['VSRNet'][6]
    assert body['VSRNet'][5] == '—'  # a method the study lacks
    assert body['VSRNet'][7] == '29.250'
    assert '3,200 iterations per run, seeds [0, 1, 2]' in table  # the longest budget both studies have
    assert '20.000' not in table and '30.000' not in table


def test_a_method_short_of_the_baselines_seeds_gets_no_mark(tmp_path):
    """A study half-way through (2 of 3 seeds) must not claim "ahead in every seed" from the seeds it has."""
    study = write_study(tmp_path / 'vsrnet', {'baseline': BASE, 'STD': STD_CLEAR, 'FitNets': STD_CLEAR[:2]})
    body = rows(family_table([load_study('VSRNet', study)]))
    assert AHEAD_MARK in body['VSRNet'][4]  # all 3 seeds ahead by more than the spread
    gain = statistics.mean(s - b for s, b in zip(STD_CLEAR[:2], BASE))
    assert body['VSRNet'][5] == f'{cell(STD_CLEAR[:2])} (+{gain:.3f}, 2/2)'


def test_a_budget_is_chosen_and_refused_by_study(tmp_path):
    vespcn = write_study(tmp_path / 'vespcn', {'baseline': BASE, 'STD': STD_CLEAR}, iters=800)
    write_study(tmp_path / 'vespcn', {'baseline': BASE, 'STD': STD_CLEAR})
    vsrnet = write_study(tmp_path / 'vsrnet', {'baseline': BASE, 'STD': KD_MIXED}, iters=800)
    studies = [load_study('VESPCN', vespcn), load_study('VSRNet', vsrnet)]
    assert '800 iterations per run' in family_table(studies)  # the longest budget they share
    with pytest.raises(CompareError, match=r'no baseline run at 3200 iterations in the study of VSRNet'):
        family_table(studies, iters=3200)


def test_several_test_sets_give_a_set_column_and_a_teacher_row_per_set(tmp_path):
    sets = ('demo', 'realvideo')
    study = load_study('FastDVDnet-SR', write_study(tmp_path / 'f', {'baseline': BASE, 'STD': STD_CLEAR}, sets=sets))
    table = family_table([study], teacher_cost=('PAN x4', 272419, 12.34), methods=['STD'])
    lines = [line for line in table.splitlines() if line.startswith('| ')]
    assert lines[0].startswith('| test set | student |')
    assert [line.split('|')[1].strip() for line in lines[1:]] == ['demo', 'demo', 'realvideo', 'realvideo']
    assert lines[2] == '| demo | *PAN x4* | 272,419 | 12.3 | — | — | 29.500 |'
    with pytest.raises(CompareError, match=r"test set\(s\) \['vid4'\] not in every study"):
        family_table([study], sets=['vid4'])
    with pytest.raises(CompareError, match=r"method\(s\) \['FitNet'\] in no study at 3200 iterations"):
        family_table([study], methods=['STD', 'FitNet'])


def test_a_comparison_json_brings_its_plateau_flags(tmp_path):
    runs = [record(label, seed, 3200, psnr, label == 'baseline') for label, values in
            (('baseline', BASE), ('STD', STD_CLEAR)) for seed, psnr in zip(SEEDS, values)]
    path = tmp_path / 'comparison.json'
    path.write_text(json.dumps({'iters': 3200, 'runs': runs, 'teacher': None,
                                'by_budget': {'3200': {'demo': {'plateau': {'baseline': [2]}}}}}))
    body = rows(family_table([load_study('VSRNet', str(path))], metric='ssim'))
    assert body['VSRNet'][3].endswith('⚑ plateau: seed 2') and 'baseline seed 2' in body['VSRNet'][4]
    assert body['VSRNet'][3].startswith(cell([v / 40 for v in BASE], 4)) and body['VSRNet'][5] == '—'


def test_unreadable_studies_are_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(CompareError, match='study X: .*nowhere is neither a records folder nor a comparison.json'):
        load_study('X', str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CompareError, match='holds no finished run'):
        load_study('X', str(tmp_path / 'empty'))
    folder = tmp_path / 'bad'
    write_study(folder, {'baseline': BASE})
    (folder / 'notes.json').write_text('{"what": 1}')
    with pytest.raises(CompareError, match=r'notes.json: not a run record') as err:
        load_study('X', str(folder))
    assert '\n' not in str(err.value)
    (tmp_path / 'list.json').write_text('[1]')
    with pytest.raises(CompareError, match='list.json holds a JSON list'):
        load_study('X', str(tmp_path / 'list.json'))
