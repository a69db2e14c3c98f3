"""stdsr.utils: the one atomic writer (permissions of a plain open, nothing left on failure), frames<->tensors,
natural sort."""
import os
import stat

import numpy as np
import pytest
import torch

from stdsr.utils.atomic_files import atomic_file, torch_save_atomic, write_json_atomic, write_text_atomic
from stdsr.utils.frames import frames_to_clip, tensor_to_frames
from stdsr.utils.naming import natural_key


def test_atomic_files_get_the_umask_permissions_not_mkstemp_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / 'a.md', 'x')
        torch_save_atomic({'w': torch.zeros(1)}, tmp_path / 'net.pth')
    finally:
        os.umask(old)
    for name in ('a.md', 'net.pth'):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'r.json'
    write_json_atomic(path, {'a': 1})
    with pytest.raises(RuntimeError):
        with atomic_file(path) as f:
            f.write('{"half')
            raise RuntimeError('disk gone')
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert os.listdir(tmp_path) == ['r.json']


def test_frames_round_trip_through_the_clip_tensor():
    frames = [np.random.default_rng(i).integers(0, 256, (5, 7, 3), dtype=np.uint8) for i in range(3)]
    clip = frames_to_clip(frames)
    assert clip.shape == (1, 3, 3, 5, 7) and float(clip.max()) <= 1.0
    assert torch.allclose(clip[0, 0, 0], torch.from_numpy(frames[0][..., 2]).float() / 255)  # BGR -> RGB
    back = tensor_to_frames(clip[0])
    assert all(np.array_equal(a, b) for a, b in zip(frames, back))


def test_natural_key_orders_numbers_by_value():
    assert sorted(['im10', 'im2', 'im1'], key=natural_key) == ['im1', 'im2', 'im10']
