"""stdsr.inference.vsr_inference: chunked, bounded-memory inference equals whole-clip inference where it should."""
import torch

import stdsr  # noqa: F401  (before basicsr)
from e2e_helpers import textured
from stdsr.archs.clip_runner import run_clip
from stdsr.inference import vsr_inference as inference
from stdsr.inference.model_loading import model_from_ckpt, model_from_opt


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
