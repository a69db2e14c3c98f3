"""Benchmark metrics, model loading, and the benchmark / inference / attention-figure scripts, end to end on CPU."""
import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn as nn

import stdsr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.registry import ARCH_REGISTRY
from e2e_helpers import load_script
from stdsr.data.clip_io import DataError
from stdsr.distill.clip_runner import run_clip
from stdsr.metrics import vsr_metrics as vm
from stdsr.tools import benchmark
from stdsr.inference import vsr_inference as inference
from stdsr.tools import attention_figures as visualize
from stdsr.inference.frame_io import InferenceInputError
from stdsr.tools.model_loading import LoadedModel, ModelLoadError, model_from_ckpt, model_from_opt




benchmark_script = load_script('benchmark')
inference_script = load_script('inference_vsr')
visualize_script = load_script('visualize_attention')


@ARCH_REGISTRY.register()
class BenchTemporalRFNet(nn.Module):
    """A clip-in, clip-out ("recurrent"-type) x4 net whose frame t sees only frames t-radius..t+radius.

    The temporal conv zero-pads the clip ends, so frames near a chunk border differ from whole-clip inference
    unless the chunk carries ``radius`` real context frames there: exactly what chunked inference must handle.
    """

    def __init__(self, radius=2, num_feat=4):
        super().__init__()
        self.temporal = nn.Conv3d(3, num_feat, (2 * radius + 1, 3, 3), padding=(radius, 1, 1))
        self.up = nn.Sequential(nn.Conv2d(num_feat, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))
        self.conv_hr = nn.Conv2d(3, 4, 3, 1, 1)
        self.conv_last = nn.Conv2d(4, 3, 3, 1, 1)

    def forward(self, x):
        feat = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        outs = []
        for i in range(x.shape[1]):
            hr = self.up(feat[:, i])
            outs.append(self.conv_last(torch.relu(self.conv_hr(hr))) + hr)
        return torch.stack(outs, dim=1)


def tiny_vsrnet_opt(scale=4, num_frame=3):
    return {'type': 'VSRNet', 'num_frame': num_frame, 'num_feat': 6, 'num_feat_hr': 4, 'scale': scale,
            'kernel_sizes': [3, 3, 3], 'residual': True}


def save_net(path, net_opt, seed, keys=('params', )):
    torch.manual_seed(seed)
    net = build_network(net_opt)
    torch.save({key: net.state_dict() for key in keys}, path)
    return net


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def option_file(path, net_opt, ckpt=None, name='tiny', experiments_root=None):
    opt = {'name': name, 'model_type': 'ClipVSRModel', 'scale': net_opt.get('scale', 4), 'num_gpu': 0,
           'network_g': net_opt, 'path': {'pretrain_network_g': ckpt}}
    if experiments_root:
        opt['path']['experiments_root'] = str(experiments_root)
    return write_yaml(path, opt)


@pytest.fixture(scope='module')
def nets(tmp_path_factory):
    """Two differently seeded tiny VSRNets (one as an option file, one as ckpt + arch options) and a x2 one."""
    root = tmp_path_factory.mktemp('nets')
    net_opt = tiny_vsrnet_opt()
    save_net(root / 'a.pth', net_opt, 0)
    save_net(root / 'b.pth', net_opt, 1, keys=('params', 'params_ema'))
    save_net(root / 'x2.pth', tiny_vsrnet_opt(scale=2), 2)
    save_net(root / 'rf.pth', {'type': 'BenchTemporalRFNet'}, 3)
    return {
        'opt_a': option_file(root / 'a.yml', net_opt, str(root / 'a.pth'), name='A'),
        'ckpt_b': str(root / 'b.pth'),
        'arch': write_yaml(root / 'arch.yml', net_opt),
        'opt_x2': option_file(root / 'x2.yml', tiny_vsrnet_opt(scale=2), str(root / 'x2.pth'), name='X2'),
        'ckpt_rf': str(root / 'rf.pth'),
        'arch_rf': write_yaml(root / 'arch_rf.yml', {'type': 'BenchTemporalRFNet'}),
    }


def textured(height, width, shift_x=0.0, shift_y=0.0, seed=0):
    """Smooth random texture sampled at a sub-pixel shift (uint8 BGR), for flow and metric tests."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (height + 16, width + 16, 3)).astype(np.float32), (0, 0), 2.0)
    mat = np.float32([[1, 0, 8 + shift_x], [0, 1, 8 + shift_y]])
    img = cv2.warpAffine(base, mat, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return np.clip(np.round((img - img.min()) / (img.max() - img.min()) * 255), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------------------------------
def test_psnr_of_a_constant_offset_matches_the_hand_computed_value():
    gt = np.full((24, 20, 3), 100, np.uint8)
    sr = gt + np.uint8(3)  # every channel +3 -> Y +3 * (65.481 + 128.553 + 24.966) / 255
    dy = 3 * 219.0 / 255.0
    assert vm.psnr_y(sr, gt) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-4)
    assert vm.ssim_y(gt, gt) == pytest.approx(1.0)
    # a difference confined to a 2-pixel border disappears with crop_border=2 (BasicSR: inf for identical images)
    framed = gt.copy()
    framed[:2] = 0
    assert math.isfinite(vm.psnr_y(framed, gt)) and vm.psnr_y(framed, gt, crop_border=2) == float('inf')


@pytest.mark.parametrize('crop_border', [0, 4])
def test_psnr_ssim_match_basicsr(crop_border):
    gt = textured(48, 40, seed=1)
    noise = np.random.default_rng(2).normal(0, 6, gt.shape)
    sr = np.clip(gt + noise, 0, 255).astype(np.uint8)
    for ours, theirs in ((vm.psnr_y, calculate_psnr), (vm.ssim_y, calculate_ssim)):
        expected = theirs(sr, gt, crop_border=crop_border, test_y_channel=True)
        assert ours(sr, gt, crop_border) == pytest.approx(expected, abs=1e-9)
    assert 20 < vm.psnr_y(sr, gt, crop_border) < 40 and 0.3 < vm.ssim_y(sr, gt, crop_border) < 1


def test_clip_then_set_averaging():
    gt = [textured(32, 32, seed=s) for s in range(3)]
    sr = [np.clip(g.astype(int) + d, 0, 255).astype(np.uint8) for g, d in zip(gt, (2, 4, 8))]
    clip = vm.clip_metrics(sr, gt)
    assert clip['num_frames'] == 3 and clip['tof'] >= 0
    assert clip['psnr'] == pytest.approx(np.mean([vm.psnr_y(s, g) for s, g in zip(sr, gt)]))
    assert clip['per_frame']['psnr'][0] > clip['per_frame']['psnr'][1] > clip['per_frame']['psnr'][2]
    one = vm.clip_metrics(sr[:1], gt[:1])  # a one-frame clip has no tOF
    assert math.isnan(one['tof'])
    # each clip counts once, however many frames it has (frame-weighted would give a different number)
    avg = vm.average_over_clips({'long': clip, 'short': one}, ('psnr', 'tof'))
    assert avg['psnr'] == pytest.approx((clip['psnr'] + one['psnr']) / 2)
    assert avg['psnr'] != pytest.approx(np.mean(clip['per_frame']['psnr'] + one['per_frame']['psnr']))
    assert avg['tof'] == pytest.approx(clip['tof'])  # the NaN of the one-frame clip is left out


def test_tof_is_zero_for_exact_sr_and_positive_for_temporal_jitter():
    gt = [textured(48, 48, shift_x=0.7 * t, seed=3) for t in range(6)]
    assert vm.tof(gt, gt) == 0.0
    jitter = [0, 1.5, -1.0, 2.0, -1.5, 1.0]
    jittered = [textured(48, 48, shift_x=0.7 * t + j, seed=3) for t, j in enumerate(jitter)]
    brighter = [np.clip(f.astype(int) + 5, 0, 255).astype(np.uint8) for f in gt]  # wrong, but consistent in time
    assert vm.tof(jittered, gt) > 0.5
    assert vm.tof(brighter, gt) < 0.2 * vm.tof(jittered, gt)
    assert vm.tof(jittered, gt, crop_border=4) > 0.5


# ----------------------------------------------------------------------------------------------------------------------
# model loading
# ----------------------------------------------------------------------------------------------------------------------
def test_loading_prefers_params_ema_and_reports_parameters(tmp_path, nets):
    net_opt = tiny_vsrnet_opt()
    torch.manual_seed(5)
    raw, ema = build_network(net_opt), build_network(net_opt)
    torch.save({'params': raw.state_dict(), 'params_ema': ema.state_dict()}, tmp_path / 'both.pth')
    model = model_from_ckpt(str(tmp_path / 'both.pth'), nets['arch'], device='cpu')
    assert torch.equal(model.net.conv_last.weight, ema.conv_last.weight)
    assert not torch.equal(model.net.conv_last.weight, raw.conv_last.weight)
    assert model.label == 'both' and '[params_ema]' in model.source
    assert model.num_params == sum(p.numel() for p in ema.parameters())
    assert (model.mode, model.window, model.scale) == ('sliding', 3, 4)
    opt_model = model_from_opt(nets['opt_a'], device='cpu')
    assert opt_model.label == 'A' and '[params]' in opt_model.source


def test_loading_errors_name_the_file(tmp_path, nets):
    with pytest.raises(ModelLoadError, match='missing.pth'):
        model_from_ckpt(str(tmp_path / 'missing.pth'), nets['arch'])
    with pytest.raises(ModelLoadError, match='missing keys.*conv_hr'):
        torch.save({'params': {'conv_last.weight': torch.zeros(1)}}, tmp_path / 'partial.pth')
        model_from_ckpt(str(tmp_path / 'partial.pth'), nets['arch'])
    no_ckpt = option_file(tmp_path / 'untrained.yml', tiny_vsrnet_opt(), experiments_root=tmp_path / 'exp')
    with pytest.raises(ModelLoadError, match='net_g_latest.pth'):
        model_from_opt(no_ckpt)
    # once the run has written net_g_latest.pth, the same option file loads it
    (tmp_path / 'exp' / 'models').mkdir(parents=True)
    save_net(tmp_path / 'exp' / 'models' / 'net_g_latest.pth', tiny_vsrnet_opt(), 0)
    assert model_from_opt(no_ckpt).source.endswith('net_g_latest.pth [params]')


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


def frame_stream(frames, log):
    for frame in frames:
        log.append('read')
        yield frame


def chunked(model, frames, chunk, overlap):
    """Chunked SR of ``frames`` as one (N, 3, H, W) tensor, checking how many frames are held at any time."""
    log, outs = [], []
    for out in inference.chunked_sr(model, frame_stream(frames, log), chunk, overlap):
        outs.append(out)
        held = log.count('read') - len(outs)
        assert held <= chunk + overlap, f'{held} LR frames held for chunk={chunk}, overlap={overlap}'
    return torch.stack(outs)


def test_chunked_inference_matches_whole_clip_for_a_sliding_network(nets):
    model = model_from_opt(nets['opt_a'], device='cpu')
    frames = [textured(12, 16, shift_x=0.5 * t, seed=5) for t in range(11)]
    whole = run_clip(model.net, inference.frames_to_clip(frames), 'sliding', 3)[0]
    for chunk in (1, 4, 20):
        out = chunked(model, frames, chunk, inference.default_overlap(model))
        torch.testing.assert_close(out, whole, atol=1e-5, rtol=0)
    # without context frames the chunk borders replicate instead of seeing their neighbours: must differ
    assert (chunked(model, frames, 4, 0) - whole).abs().amax() > 1e-3


def test_chunked_inference_matches_whole_clip_for_a_recurrent_network_away_from_borders(nets):
    model = model_from_ckpt(nets['ckpt_rf'], nets['arch_rf'], device='cpu')
    assert model.mode == 'recurrent'
    frames = [textured(8, 8, shift_y=0.5 * t, seed=6) for t in range(13)]
    whole = model.infer(inference.frames_to_clip(frames))[0]
    n, chunk, radius = len(frames), 4, 2
    torch.testing.assert_close(chunked(model, frames, chunk, radius), whole, atol=1e-5, rtol=0)
    overlap = 1  # less context than the receptive field: only frames far enough from inner chunk borders agree
    out = chunked(model, frames, chunk, overlap)
    err = (out - whole).abs().flatten(1).amax(dim=1)
    for t in range(n):
        start = t // chunk * chunk
        in_start, in_end = max(0, start - overlap), min(n, start + chunk + overlap)
        sees_all = (t - radius >= in_start or in_start == 0) and (t + radius < in_end or in_end == n)
        assert (err[t] < 1e-5) == sees_all, f'frame {t}: error {err[t]:.2e}, full receptive field: {sees_all}'


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


def test_loaded_model_infer_runs_on_the_model_device(nets):
    model = model_from_opt(nets['opt_a'], device='cpu')
    assert isinstance(model, LoadedModel) and model.fsr_tap == 'conv_last:input'
    out = model.infer(torch.rand(1, 4, 3, 6, 5))
    assert out.shape == (1, 4, 3, 24, 20) and out.device.type == 'cpu'


def test_demo_flag_adds_the_real_motion_test_set(tiny_demo_root):
    from types import SimpleNamespace

    from stdsr.tools.benchmark import collect_datasets
    args = SimpleNamespace(dataset=[], datasets=[], gt_root=None, lq_root=None, name=None,
                           demo=str(tiny_demo_root), center_frame_only=False, degradation=None)
    specs = collect_datasets(args)
    assert [s.name for s in specs] == ['demo', 'demo_real']
    assert specs[1].gt_root == str(tiny_demo_root / 'test_real' / 'GT')
