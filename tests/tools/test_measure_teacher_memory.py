"""scripts/measure_teacher_memory.py: per-window peak of a no-grad teacher forward, extrapolated linearly."""
import pytest

from e2e_helpers import load_script

TINY = {'type': 'EDVR', 'num_feat': 8, 'num_frame': 3, 'deformable_groups': 1, 'num_extract_block': 1,
        'num_reconstruct_block': 1, 'with_tsa': False}


def test_memory_grows_per_window_and_is_extrapolated_to_a_batch():
    script = load_script('measure_teacher_memory')
    opt = {'scale': 4, 'network_t': TINY,
           'datasets': {'train': {'gt_size': 64, 'num_frame': 5, 'batch_size_per_gpu': 3}}}
    lines = []
    r = script.measure(opt, log=lines.append)
    # the kept conv_hr output alone is 64 channels x 64 x 64 float32 = 1 MiB per window
    assert r['per_window'] >= 64 * 64 * 64 * 4
    assert r['per_sample'] == pytest.approx(r['fixed'] + 5 * r['per_window'])
    assert r['per_gpu_batch'] == pytest.approx(r['fixed'] + 15 * r['per_window'])
    assert (r['lr_size'], r['window']) == (16, 3) and len(lines) == 2


def test_recurrent_teachers_are_refused():
    script = load_script('measure_teacher_memory')
    opt = {'scale': 4, 'network_t': {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1},
           'datasets': {'train': {'gt_size': 64, 'num_frame': 5, 'batch_size_per_gpu': 1}}}
    with pytest.raises(script.OptionError, match='recurrent'):
        script.measure(opt)
