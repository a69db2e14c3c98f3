"""stdsr.tools.benchmarking.paper_table: one markdown table per test set, measured and published rows kept apart."""
from pathlib import Path

import pytest

from stdsr.tools.benchmarking.paper_table import (PaperTableError, Row, load_reference_rows, render_paper_tables,
                                          rows_from_report)

REPO_ROOT = Path(__file__).resolve().parents[3]


def report(psnrs):
    """A benchmark report (scripts/benchmark.py's results.json layout) with PSNR per (model, set)."""
    models = [{'label': label, 'params': 1000 * (i + 1)} for i, label in enumerate(psnrs)]
    results = {label: {name: {'average': {'psnr': p, 'ssim': p / 40.}, 'runtime_ms_per_frame': 10. * (i + 1)}
                       for name, p in sets.items()} for i, (label, sets) in enumerate(psnrs.items())}
    return {'models': models, 'results': results}


def table_lines(markdown, set_name):
    section = markdown.split(f'### {set_name}\n')[1].split('### ')[0]
    return [line for line in section.splitlines() if line.startswith('| ') and not line.startswith('| Method')]


def test_one_table_per_set_with_the_measured_numbers():
    rows = rows_from_report(report({'bicubic': {'Vid4': 23.78, 'SPMCS': 25.67},
                                    'VESPCN': {'Vid4': 25.35, 'SPMCS': 27.4},
                                    'VESPCN+STD': {'Vid4': 25.61, 'SPMCS': 27.5}}))
    md = render_paper_tables(rows, baselines={'VESPCN+STD': 'VESPCN'})
    assert md.count('### ') == 2 and md.index('### Vid4') < md.index('### SPMCS')
    vid4 = table_lines(md, 'Vid4')
    assert [line.split(' | ')[0] for line in vid4] == ['| bicubic', '| VESPCN', '| VESPCN+STD']
    assert vid4[2] == '| VESPCN+STD | 3.0K | 30.0 | **25.61** | **0.6402** | +0.26 |'
    assert vid4[1].endswith('| - |')  # no baseline named for VESPCN
    assert '†' not in md


def test_published_rows_come_first_marked_and_cited(tmp_path):
    refs = tmp_path / 'refs.yml'
    refs.write_text("rows:\n  - {method: EDVR-L, params: 20.6M, source: Wang et al. 2019, "
                    "results: {Vid4: {psnr: 27.35, ssim: 0.8264}, REDS4: {psnr: 31.09, ssim: 0.88, channel: RGB}}}\n")
    rows = rows_from_report(report({'STD': {'Vid4': 26.0}}))
    md = render_paper_tables(rows, load_reference_rows(str(refs)))
    assert '### REDS4' not in md  # references only fill sets we measured
    vid4 = table_lines(md, 'Vid4')
    assert vid4[0] == '| EDVR-L † | 20.60M | - | **27.35** | **0.8264** |'
    assert vid4[1].startswith('| STD | 1.0K | 10.0 | 26.00 |')
    assert '† published, not measured here: Wang et al. 2019.' in md
    md = render_paper_tables(rows, load_reference_rows(str(refs)), sets=['REDS4'], channel={'REDS4': 'Y'})
    assert '| 31.09 (RGB) | 0.8800 (RGB) |' in md  # never compared (or bolded) against Y numbers


def test_the_shipped_reference_file_loads():
    rows = load_reference_rows(str(REPO_ROOT / 'docs/reference_rows/basicsr_model_zoo.yml'))
    assert {r.method for r in rows} >= {'EDVR-L (Vimeo-90K, BI)', 'EDVR-M (REDS)'}
    assert all(r.source and r.results for r in rows)


@pytest.mark.parametrize('text,message', [
    ('rows:\n  - {method: A, source: s, resluts: {}}\n', 'unknown keys'),
    ('rows:\n  - {method: A, results: {Vid4: {psnr: 27.1}}}\n', "'source' is required"),
    ('rows:\n  - {method: A, source: s, results: {Vid4: {psnr: high}}}\n', r'results.Vid4.psnr must be a finite'),
    ('rows:\n  - {method: A, source: s, results: {Vid4: {psnr: 27.1, channel: YUV}}}\n', 'channel must be one of'),
    ('rows:\n  - {method: A, source: s, params: lots}\n', 'params must be a count'),
    ('- {method: A}\n', "one key 'rows'"),
])
def test_bad_reference_files_are_one_line_errors_naming_the_entry(tmp_path, text, message):
    path = tmp_path / 'refs.yml'
    path.write_text(text)
    with pytest.raises(PaperTableError, match=message) as err:
        load_reference_rows(str(path))
    assert str(path) in str(err.value) and '\n' not in str(err.value)


def test_plain_mappings_are_accepted_as_rows():
    md = render_paper_tables([{'method': 'A', 'params': 5, 'runtime_ms': 2.5,
                               'results': {'UDM10': {'psnr': 30.0, 'ssim': 0.9}}}], title='x4 BI')
    assert md.startswith('## x4 BI') and '| A | 5 | 2.5 | **30.00** | **0.9000** |' in md
    assert isinstance(rows_from_report(report({'A': {'Vid4': 1.}}))[0], Row)
