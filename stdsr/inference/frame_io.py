"""Frame sources (a folder of images, a video file) and sinks (PNG folder, video file) for inference.

An input is accepted only when it is positively identified: a folder of image files whose first frame decodes,
or a file with a video extension whose first frame decodes. FFmpeg opens almost anything (a text file renders
as 19 frames of text), so "OpenCV could open it" is not enough. Outputs are written under a temporary name and
renamed when complete, so a failed run never leaves a truncated video or half a folder under the final name.
"""
import os
import shutil
from os import path as osp

import cv2

from stdsr.data.clip_io import natural_key
from stdsr.errors import InferenceInputError
from stdsr.utils.atomic_files import partial_path, publish_folder
from stdsr.utils.cli import UserInputError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v')


def is_video_path(path):
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


class FolderSource:
    """Image files of one folder in natural order (``f2`` before ``f10``), decoded one at a time."""

    def __init__(self, folder):
        files = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.')]
        if not files:
            raise InferenceInputError(f'input folder {folder} holds no image frames ({", ".join(IMAGE_EXTENSIONS)})')
        self.paths = [osp.join(folder, f) for f in sorted(files, key=natural_key)]
        self.names = [osp.splitext(osp.basename(p))[0] for p in self.paths]
        self.num_frames = len(self.paths)
        self.fps = None
        self.frames_read = 0
        self._decode(self.paths[0])  # positively identified: the first frame is an image

    @staticmethod
    def _decode(path):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise InferenceInputError(f'cannot decode frame {path}')
        return img

    def __iter__(self):
        for path in self.paths:
            img = self._decode(path)
            self.frames_read += 1
            yield img

    def ended_early(self):
        return None


class VideoSource:
    """Frames of a video file via OpenCV, decoded one at a time; the header's frame count is a hint for the bar
    and for :meth:`ended_early`."""

    def __init__(self, path):
        if not is_video_path(path):
            raise InferenceInputError(f'input {path} is neither a folder of frames nor a video file '
                                      f'({", ".join(VIDEO_EXTENSIONS)})')
        cap = cv2.VideoCapture(path)
        try:
            ok = cap.isOpened() and cap.read()[0]
            self.fps = cap.get(cv2.CAP_PROP_FPS) or None
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        if not ok:
            raise InferenceInputError(f'cannot decode a frame of video {path} (not a video OpenCV can read?)')
        self.path, self.num_frames, self.names = path, (count if count > 0 else None), None
        self.frames_read = 0

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                self.frames_read += 1
                yield frame
        finally:
            cap.release()

    def ended_early(self):
        """A sentence when fewer frames decoded than the header announces (a truncated file), else None.

        Containers' counts are estimates (an mp4 of 917 frames may announce 922), so a shortfall of up to 1% (at
        least 2 frames) is normal; more is a file that ends early.
        """
        if self.num_frames and self.frames_read < self.num_frames - max(2, self.num_frames // 100):
            return (f'video {self.path} ended after {self.frames_read} of the {self.num_frames} frames its header '
                    'announces (truncated or damaged?)')
        return None


def open_source(path):
    if not osp.exists(path):
        raise InferenceInputError(f'input {path} does not exist')
    return FolderSource(path) if osp.isdir(path) else VideoSource(path)


class FolderSink:
    """PNG per frame (the input's frame names, or ``00000000.png``...), written into ``<folder>.partial`` that
    replaces ``folder`` as a whole when every frame is written (no frame of an earlier output survives)."""

    def __init__(self, folder, names=None):
        self.folder, self.names, self.count = folder, names, 0
        self.tmp_folder = partial_path(folder)

    def write(self, frame):
        if self.count == 0:
            shutil.rmtree(self.tmp_folder, ignore_errors=True)
            os.makedirs(self.tmp_folder)
        name = self.names[self.count] if self.names else f'{self.count:08d}'
        path = osp.join(self.tmp_folder, f'{name}.png')
        if not cv2.imwrite(path, frame):
            raise InferenceInputError(f'cannot write {path}')
        self.count += 1

    def close(self):
        if self.count == 0:
            return
        publish_folder(self.tmp_folder, self.folder, replace=True)  # check_output: absent, empty or --overwrite

    def abort(self):
        shutil.rmtree(self.tmp_folder, ignore_errors=True)


class VideoSink:
    """mp4v video at the input's frame rate, written to ``<stem>.partial<ext>`` and renamed at the end."""

    def __init__(self, path, fps):
        self.path, self.fps, self.writer, self.count = path, fps, None, 0
        stem, ext = osp.splitext(path)
        self.tmp_path = f'{stem}.partial{ext}'

    def write(self, frame):
        if self.writer is None:
            os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(self.tmp_path, cv2.VideoWriter_fourcc(*'mp4v'), self.fps, (w, h))
            if not self.writer.isOpened():
                raise InferenceInputError(f'cannot open a video writer for {self.path} (mp4v, {w}x{h}, {self.fps} fps)')
        self.writer.write(frame)
        self.count += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp_path, self.path)

    def abort(self):
        if self.writer is not None:
            self.writer.release()
            if osp.exists(self.tmp_path):
                os.remove(self.tmp_path)


def check_output(path, overwrite, input_path=None):
    """An existing video, or a non-empty folder, is replaced (as a whole) only with --overwrite; the place must
    be writable. Checked before any model is loaded. Replacing a folder removes what it held, so a folder that
    is, or contains, the input, or that holds anything but PNG frames (what this command writes), is refused."""
    from stdsr.utils.output_paths import check_name_fits, check_output_file, check_writable_dir
    if input_path is not None:
        out, src = osp.realpath(path), osp.realpath(input_path)
        if out == src or src.startswith(out.rstrip(os.sep) + os.sep):
            raise InferenceInputError(f'output {path} is the input or contains it ({input_path}); '
                                      'choose an --output outside the input')
    # the temporaries: '<stem>.partial<ext>' of a video, '.<name>.partial.old' of a replaced folder
    check_name_fits(path, 'output', len('.partial') if is_video_path(path) else len('..partial.old'))
    if is_video_path(path):
        if osp.exists(path) and not overwrite:
            raise InferenceInputError(f'output {path} exists; pass --overwrite to replace it')
        check_output_file(path, 'output video')
        return
    if osp.exists(path) and not osp.isdir(path):
        raise InferenceInputError(f'output {path} exists and is not a folder (a video needs one of '
                                  f'{", ".join(VIDEO_EXTENSIONS)})')
    if osp.isdir(path) and not overwrite and any(os.scandir(path)):
        raise InferenceInputError(f'output folder {path} is not empty; pass --overwrite to replace it')
    if osp.isdir(path):
        foreign = sorted(e.name + ('/' if e.is_dir() else '') for e in os.scandir(path)
                         if not (e.is_file(follow_symlinks=False) and e.name.lower().endswith('.png')))
        if foreign:
            shown = ', '.join(foreign[:3]) + (f' and {len(foreign) - 3} more' if len(foreign) > 3 else '')
            raise InferenceInputError(f'output folder {path} holds files this command did not write ({shown}); '
                                      '--overwrite replaces only a folder of PNG frames: choose another --output')
    check_writable_dir(path, 'output folder')
