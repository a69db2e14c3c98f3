"""The demo's summary table is built from benchmark.py's report without losing or mislabelling a model."""
from e2e_helpers import load_script

run_demo = load_script('run_demo')


def report(psnrs):
    models = [{'label': label, 'params': 1000 * (i + 1)} for i, label in enumerate(psnrs)]
    results = {
        label: {'demo': {'average': {'psnr': p, 'ssim': p / 40, 'tof': 0.5}, 'runtime_ms_per_frame': 2.0 + i}}
        for i, (label, p) in enumerate(psnrs.items())
    }
    return {'models': models, 'results': results}


def test_summary_rows_and_gap_closed():
    psnrs = {'bicubic': 27.0, 'teacher': 29.0, 'baseline student': 28.0, 'STD student': 28.5}
    text = run_demo.format_summary(report(psnrs), 'demo', 120)
    rows = [line for line in text.splitlines() if line.startswith('| ') and 'model' not in line]
    assert [r.split('|')[1].strip() for r in rows] == list(psnrs)
    assert '| STD student | 4,000 | 28.5000 | 0.7125 | 0.5000 | 5.0 |' in text
    assert 'STD - baseline: +0.5000 dB, 50% of the teacher-student gap' in text
    assert 'Total demo time: 2.0 min.' in text


def test_summary_says_when_there_is_no_gap_to_close():
    psnrs = {'teacher': 28.0, 'baseline student': 28.2, 'STD student': 28.1}
    text = run_demo.format_summary(report(psnrs), 'demo', 60)
    assert 'STD - baseline: -0.1000 dB' in text and 'no gap to close' in text


def test_summary_has_a_table_per_test_set():
    psnrs = {'bicubic': 27.0, 'teacher': 29.0, 'baseline student': 28.0, 'STD student': 28.5}
    rep = report(psnrs)
    for label, p in zip(psnrs, (25.0, 27.0, 26.0, 26.25)):
        rep['results'][label]['demo_real'] = {'average': {'psnr': p, 'ssim': 0.7, 'tof': None},
                                              'runtime_ms_per_frame': 1.0}
    text = run_demo.format_summary(rep, ['demo', 'demo_real'], 60)
    assert '## Held-out demo test clips' in text and '## Real-motion test clips' in text
    assert '| STD student | 4,000 | 26.2500 | 0.7000 | - | 1.0 |' in text
    assert text.count('STD - baseline:') == 2 and 'STD - baseline: +0.2500 dB, 25% of the teacher-student gap' in text


def test_training_steps_ask_for_one_device_when_several_are_visible(monkeypatch, tmp_path):
    import torch
    for count, extra in ((0, []), (1, []), (4, ['--force_yml', 'num_gpu=1'])):
        monkeypatch.setattr(torch.cuda, 'device_count', lambda count=count: count)
        cmd = run_demo.train_command('train_VESPCN_teacher_demo.yml', str(tmp_path / 'fresh'))
        assert cmd[1:] == ['-m', 'stdsr.train', '-opt', 'options/train/STD/demo/train_VESPCN_teacher_demo.yml'] + extra
    (tmp_path / 'interrupted' / 'training_states').mkdir(parents=True)
    cmd = run_demo.train_command('train_VESPCN_teacher_demo.yml', str(tmp_path / 'interrupted'))
    assert cmd[-3:] == ['--auto_resume', '--force_yml', 'num_gpu=1']  # an option of stdsr.train, not of --force_yml
