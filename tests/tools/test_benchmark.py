"""Model loading, and the benchmark / inference / attention-figure scripts, end to end on CPU."""
import csv
import json

import cv2
import numpy as np
import pytest
import torch

import stdsr  # noqa: F401  (before basicsr)
from e2e_helpers import load_script, textured, write_yaml
from stdsr.data.clip_io import DataError
from stdsr.archs.clip_runner import run_clip
from stdsr.tools import benchmarking as benchmark
from stdsr.inference import vsr_inference as inference
from stdsr.tools.figures import attention as visualize
from stdsr.inference.frame_io import InferenceInputError
from stdsr.inference.model_loading import ModelLoadError, model_from_opt


benchmark_script = load_script('benchmark')
inference_script = load_script('inference_vsr')
visualize_script = load_script('visualize_attention')


# ----------------------------------------------------------------------------------------------------------------------
# model loading
# ----------------------------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------------------------------
def read_png(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f'{path} is not a readable image'
    return img


def test_benchmark_writes_tables_json_and_plot(tmp_path, nets, tiny_demo_root):
    out = tmp_path / 'bench'
    gt, lq = tiny_demo_root / 'test' / 'GT', tiny_demo_root / 'test' / 'BIx4'
    sets = write_yaml(tmp_path / 'sets.yml', [{'name': 'demoBI', 'gt_root': str(gt), 'degradation': 'BI'},
                                              {'name': 'centre', 'gt_root': str(gt), 'lq_root': str(lq),
                                               'center_frame_only': True}])
    argv = ['--opt', nets['opt_a'], '--ckpt', f"B={nets['ckpt_b']}", '--arch-opt', nets['arch'],
            '--dataset', f'demo={gt},{lq}', '--datasets', sets, '--out', str(out), '--device', 'cpu', '--warmup', '0',
            '--quiet']
    report = benchmark_script.main(argv)
    for name in ('results.md', 'results.csv', 'results.json', 'psnr_vs_runtime.png'):
        assert (out / name).stat().st_size > 0
    plot = read_png(out / 'psnr_vs_runtime.png')
    assert plot.shape[1] > plot.shape[0] > 200 and plot.std() > 0

    rows = list(csv.DictReader(open(out / 'results.csv')))
    clips = ['chelsea_000', 'coffee_000']
    datasets = ('demo', 'demoBI', 'centre')
    expected = [(m, d, c) for m in ('bicubic', 'A', 'B') for d in datasets for c in clips + ['average']]
    assert [(r['model'], r['dataset'], r['clip']) for r in rows] == expected
    by_key = {(r['model'], r['dataset'], r['clip']): r for r in rows}
    for model in ('bicubic', 'A', 'B'):
        clip_psnr = [float(by_key[(model, 'demo', c)]['psnr']) for c in clips]
        assert float(by_key[(model, 'demo', 'average')]['psnr']) == pytest.approx(np.mean(clip_psnr), abs=1e-5)
        # the demo LR is bi_downsample of its GT, so degrading GT on the fly must give the very same numbers
        for clip in clips + ['average']:
            for metric in ('psnr', 'ssim', 'tof'):
                assert by_key[(model, 'demoBI', clip)][metric] == by_key[(model, 'demo', clip)][metric]
        assert float(by_key[(model, 'demo', 'average')]['runtime_ms_per_frame']) > 0
        # Vimeo-90K-T convention: one scored frame per clip, no frame pair for tOF
        centre = by_key[(model, 'centre', 'chelsea_000')]
        assert centre['frames'] == '1' and centre['tof'] == '' and centre['psnr'] != by_key[(model, 'demo',
                                                                                              'chelsea_000')]['psnr']
    assert int(by_key[('bicubic', 'demo', 'average')]['params']) == 0
    assert int(by_key[('A', 'demo', 'average')]['params']) == report['models'][1]['params'] > 0
    assert 20 < float(by_key[('bicubic', 'demo', 'average')]['psnr']) < 45
    assert by_key[('A', 'demo', 'chelsea_000')]['psnr'] != by_key[('B', 'demo', 'chelsea_000')]['psnr']

    data = json.loads((out / 'results.json').read_text())
    assert [m['label'] for m in data['models']] == ['bicubic', 'A', 'B']
    assert data['results']['B']['demo']['average']['ssim'] == pytest.approx(
        float(by_key[('B', 'demo', 'average')]['ssim']), abs=1e-6)
    assert data['results']['A']['demo']['per_clip']['coffee_000']['num_frames'] == 5
    md = (out / 'results.md').read_text()
    assert '| bicubic | 0 |' in md and '| A |' in md and '## demoBI' in md and '**average**' in md

    # earlier results are never replaced silently
    before = (out / 'results.csv').read_bytes()
    with pytest.raises(benchmark.BenchmarkError, match='--overwrite'):
        benchmark_script.main(argv)
    assert (out / 'results.csv').read_bytes() == before


def test_benchmark_bad_input_fails_clearly(tmp_path, nets, tiny_demo_root):
    gt, lq = tiny_demo_root / 'test' / 'GT', tiny_demo_root / 'test' / 'BIx4'
    common = ['--out', str(tmp_path / 'out'), '--device', 'cpu', '--warmup', '0', '--quiet']
    with pytest.raises(benchmark.BenchmarkError, match=r"model 'X2' upscales x2.*'demo' has GT = LR x4"):
        benchmark_script.main(['--opt', nets['opt_x2'], '--dataset', f'demo={gt},{lq}'] + common)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='holds no .png frames'):
        benchmark_script.main(['--opt', nets['opt_a'], '--dataset', f"e={tmp_path / 'empty'}", '--degradation', 'BI'] +
                       common)
    with pytest.raises(benchmark.BenchmarkError, match='does not exist'):
        benchmark_script.main(['--opt', nets['opt_a'], '--dataset', f"m={tmp_path / 'nope'},{lq}"] + common)
    with pytest.raises(ModelLoadError, match='gone.pth'):
        benchmark_script.main(['--ckpt', str(tmp_path / 'gone.pth'), '--arch-opt', nets['arch'], '--dataset',
                        f'demo={gt},{lq}'] + common)
    with pytest.raises(benchmark.BenchmarkError, match='--degradation'):
        benchmark_script.main(['--opt', nets['opt_a'], '--dataset', f'demo={gt}'] + common)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('flag, value', [('--max-clips', '-3'), ('--max-clips', '0'), ('--max-frames', '0')])
def test_benchmark_max_clips_below_one_is_one_line_before_any_work(tmp_path, tiny_demo_root, capsys, flag, value):
    """--max-clips -3 ended in a 14-line traceback; --max-clips 0 scored every clip without a word."""
    gt, lq = tiny_demo_root / 'test' / 'GT', tiny_demo_root / 'test' / 'BIx4'
    with pytest.raises(SystemExit) as exited:
        benchmark_script.main(['--opt', 'any.yml', '--dataset', f'demo={gt},{lq}', '--out', str(tmp_path / 'out'),
                               flag, value])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f'error: {flag} must be a positive integer, got {value}')
    assert not (tmp_path / 'out').exists()


def test_benchmark_writes_paper_tables_with_published_rows(tmp_path, nets, tiny_demo_root):
    gt, lq = tiny_demo_root / 'test' / 'GT', tiny_demo_root / 'test' / 'BIx4'
    refs = write_yaml(tmp_path / 'refs.yml', {'rows': [{'method': 'EDVR-L', 'params': '20.6M', 'source': 'zoo',
                                                        'results': {'demo': {'psnr': 31.0, 'ssim': 0.9}}}]})
    common = ['--opt', nets['opt_a'], '--dataset', f'demo={gt},{lq}', '--device', 'cpu', '--warmup', '0', '--quiet']
    bad = write_yaml(tmp_path / 'bad.yml', {'rows': [{'method': 'X', 'results': {}}]})
    with pytest.raises(benchmark.BenchmarkError, match=r"bad.yml: rows\[0\].*'source' is required"):
        benchmark_script.main(common + ['--out', str(tmp_path / 'no'), '--references', bad])
    assert not (tmp_path / 'no').exists()  # refused before anything was evaluated or written
    out = tmp_path / 'paper'
    report = benchmark_script.main(common + ['--out', str(out), '--references', refs, '--baseline', 'A=bicubic'])
    tables = (out / 'paper_tables.md').read_text()
    psnr_a = report['results']['A']['demo']['average']['psnr']
    assert 'demo' in tables and 'EDVR-L' in tables and '| A |' in tables and f'{psnr_a:.2f}' in tables


# ----------------------------------------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------------------------------------
def write_video(path, frames, fps):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()


def read_video(path):
    cap = cv2.VideoCapture(str(path))
    fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def test_inference_round_trips_a_video_and_a_frame_folder(tmp_path, nets):
    frames = [textured(32, 32, shift_x=t, seed=4) for t in range(9)]
    write_video(tmp_path / 'in.mp4', frames, fps=12.5)
    count, size = inference_script.main(['--opt', nets['opt_a'], '--input', str(tmp_path / 'in.mp4'), '--output',
                                  str(tmp_path / 'out.mp4'), '--chunk', '4', '--device', 'cpu', '--no-progress'])
    out_frames, fps = read_video(tmp_path / 'out.mp4')
    assert count == len(out_frames) == 9 and size == (128, 128)
    assert out_frames[0].shape == (128, 128, 3) and fps == pytest.approx(12.5)
    assert not list(tmp_path.glob('*.partial*'))

    folder = tmp_path / 'frames'
    folder.mkdir()
    for t, frame in enumerate(frames[:5]):
        cv2.imwrite(str(folder / f'im{t + 1}.png'), frame)
    cv2.imwrite(str(folder / 'im10.png'), frames[5])  # natural order: im10 comes last
    inference_script.main(['--ckpt', nets['ckpt_b'], '--arch-opt', nets['arch'], '--input', str(folder), '--output',
                    str(tmp_path / 'sr'), '--device', 'cpu', '--no-progress'])
    written = sorted(p.name for p in (tmp_path / 'sr').iterdir())
    assert written == sorted(f'im{i}.png' for i in (1, 2, 3, 4, 5, 10))
    assert read_png(tmp_path / 'sr' / 'im10.png').shape == (128, 128, 3)


def test_inference_errors(tmp_path, nets):
    base = ['--opt', nets['opt_a'], '--device', 'cpu', '--no-progress']
    with pytest.raises(InferenceInputError, match='does not exist'):
        inference_script.main(base + ['--input', str(tmp_path / 'nope'), '--output', str(tmp_path / 'o')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(InferenceInputError, match='no image frames'):
        inference_script.main(base + ['--input', str(tmp_path / 'empty'), '--output', str(tmp_path / 'o')])
    (tmp_path / 'broken.mp4').write_bytes(b'not a video at all')
    with pytest.raises(InferenceInputError, match='broken.mp4'):
        inference_script.main(base + ['--input', str(tmp_path / 'broken.mp4'), '--output', str(tmp_path / 'o.mp4')])
    write_video(tmp_path / 'ok.mp4', [textured(16, 16)] * 3, fps=10)
    (tmp_path / 'taken.mp4').write_bytes(b'precious')
    with pytest.raises(InferenceInputError, match='--overwrite'):
        inference_script.main(base + ['--input', str(tmp_path / 'ok.mp4'), '--output', str(tmp_path / 'taken.mp4')])
    assert (tmp_path / 'taken.mp4').read_bytes() == b'precious'
    (tmp_path / 'lr').mkdir()
    cv2.imwrite(str(tmp_path / 'lr' / '0.png'), textured(16, 16))
    with pytest.raises(InferenceInputError, match='is the input'):
        inference_script.main(base + ['--input', str(tmp_path / 'lr'), '--output', str(tmp_path / 'lr'), '--overwrite'])
    assert read_png(tmp_path / 'lr' / '0.png').shape == (16, 16, 3)


@pytest.mark.parametrize('suffix', ['', '.mp4'])
def test_inference_output_name_too_long_is_refused_before_any_frame(tmp_path, nets, monkeypatch, suffix):
    """An output name too long for the file system failed after every frame was computed, leaving an empty folder."""
    (tmp_path / 'lr').mkdir()
    cv2.imwrite(str(tmp_path / 'lr' / '0.png'), textured(16, 16))
    out = tmp_path / ('o' * (250 - len(suffix)) + suffix)  # fits alone (250 < 255), not with its temporary name
    monkeypatch.setattr(inference_script, 'load_model', lambda args: pytest.fail('the model was loaded'))
    from stdsr.errors import UserInputError
    with pytest.raises(UserInputError, match=rf'output {out}: the name o+\.\.\. is 2\d\d bytes with the \d+ '
                                             r'characters of its temporary name, longer than the 255') as err:
        inference_script.main(['--opt', nets['opt_a'], '--device', 'cpu', '--no-progress', '--input',
                               str(tmp_path / 'lr'), '--output', str(out)])
    assert '\n' not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lr']


def test_inference_refuses_an_output_folder_that_contains_the_input_or_files_it_did_not_write(tmp_path, nets):
    """Issue 33, item 2: --output proj --input proj/lr_clip --overwrite deleted the input clip and proj/notes.txt."""
    base = ['--opt', nets['opt_a'], '--device', 'cpu', '--no-progress', '--overwrite']
    proj = tmp_path / 'proj'
    (proj / 'lr_clip').mkdir(parents=True)
    cv2.imwrite(str(proj / 'lr_clip' / '0.png'), textured(16, 16))
    (proj / 'notes.txt').write_text('mine')
    with pytest.raises(InferenceInputError, match=r'output .*proj is the input or contains it'):
        inference_script.main(base + ['--input', str(proj / 'lr_clip'), '--output', str(proj)])
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'notes.txt').write_text('mine too')
    with pytest.raises(InferenceInputError, match=r'holds files this command did not write \(notes.txt\)'):
        inference_script.main(base + ['--input', str(proj / 'lr_clip'), '--output', str(other)])
    assert sorted(p.name for p in proj.iterdir()) == ['lr_clip', 'notes.txt']
    assert read_png(proj / 'lr_clip' / '0.png').shape == (16, 16, 3)
    assert (other / 'notes.txt').read_text() == 'mine too' and len(list(other.iterdir())) == 1


# ----------------------------------------------------------------------------------------------------------------------
# attention and crop figures
# ----------------------------------------------------------------------------------------------------------------------
def test_sliding_features_of_chosen_frames_equal_those_of_the_whole_clip(nets):
    model = model_from_opt(nets['opt_a'], device='cpu')
    lq = inference.frames_to_clip([textured(8, 8, shift_x=t, seed=7) for t in range(6)])
    sr, feats = visualize.sr_and_features(model, lq, [0, 4], 'conv_hr')
    from stdsr.distill.feature_hooks import FeatureRecorder
    with FeatureRecorder(model.net, ['conv_hr']) as rec:
        whole = run_clip(model.net, lq, 'sliding', 3)[0]
        all_feats = rec.records['conv_hr'][0]
    torch.testing.assert_close(sr, whole[[0, 4]])
    torch.testing.assert_close(feats, all_feats[[0, 4]])
    maps = visualize.attention_maps(feats, 'none')
    torch.testing.assert_close(torch.from_numpy(maps['sum |F|^2']), feats.pow(2).sum(1))
    torch.testing.assert_close(torch.from_numpy(maps['max |F|^2']), feats.pow(2).amax(1))


def test_visualize_attention_writes_figures_of_the_documented_size(tmp_path, nets, tiny_demo_root):
    clip = 'chelsea_000'
    gt, lq = tiny_demo_root / 'test' / 'GT' / clip, tiny_demo_root / 'test' / 'BIx4' / clip
    out = tmp_path / 'figs'
    written = visualize_script.main([
        '--opt', f"baseline={nets['opt_a']}", '--ckpt', f"STD={nets['ckpt_b']}", '--ckpt', f"teacher={nets['ckpt_rf']}",
        '--arch-opt', nets['arch'], '--arch-opt', nets['arch_rf'], '--gt', str(gt), '--lq', str(lq), '--frames', '1,3',
        '--crop', '8,16,24,20', '--panel-px', '100', '--out', str(out), '--device', 'cpu'
    ])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f'{kind}_{clip}_{frame:08d}.png' for kind in ('attention', 'crops') for frame in (1, 3))
    assert sorted(written) == sorted(str(p) for p in out.iterdir())
    # P=100: T=18, L=15, B=25 -> attention (L + 3P) x (3 rows * (P + T) + B); crops 6 panels * P x (P + T)
    attention = read_png(out / f'attention_{clip}_00000001.png')
    crops = read_png(out / f'crops_{clip}_00000003.png')
    assert attention.shape[:2] == (3 * 118 + 25, 15 + 300)
    assert crops.shape[:2] == (118, 6 * 100)
    assert attention.std() > 10 and crops.std() > 10
    with pytest.raises(visualize.VisualizationError, match='--overwrite'):
        visualize_script.main(['--opt', nets['opt_a'], '--gt', str(gt), '--frames', '1,3', '--out', str(out)])
    with pytest.raises(visualize.VisualizationError, match='--crop'):
        visualize_script.main(['--opt', nets['opt_a'], '--gt', str(gt), '--crop', '60,0,10,10',
                               '--out', str(tmp_path / 'o')])
    # LR made from GT: the figure still works without --lq
    visualize_script.main(['--opt', nets['opt_a'], '--gt', str(gt), '--frames', '0', '--panel-px', '80', '--out',
                    str(tmp_path / 'from_gt')])
    assert read_png(tmp_path / 'from_gt' / f'attention_{clip}_00000000.png').shape[:2] == (
        round(0.18 * 80) + 80 + 20, 12 + 240)


def test_demo_flag_adds_the_real_motion_test_set(tiny_demo_root):
    from types import SimpleNamespace

    from stdsr.tools.benchmarking import collect_datasets
    args = SimpleNamespace(dataset=[], datasets=[], gt_root=None, lq_root=None, name=None,
                           demo=str(tiny_demo_root), center_frame_only=False, degradation=None)
    specs = collect_datasets(args)
    assert [s.name for s in specs] == ['demo', 'demo_real']
    assert specs[1].gt_root == str(tiny_demo_root / 'test_real' / 'GT')
