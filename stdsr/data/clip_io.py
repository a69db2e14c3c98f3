"""Frame I/O shared by the clip datasets: option checks, meta_info parsing, clip-tree listing and frame reading.

A clip tree is ``<root>/<clip>/<frame>.png`` on disk, or a BasicSR LMDB ``<root>.lmdb`` whose keys are
``<clip>/<frame>``. Clip names may contain ``/`` (Vimeo-90K ``00001/0001``). Every failure is a ``DataError``
that names the offending file, LMDB key (with its LMDB path) or option key, because a bare ``KeyError`` or
``NoneType`` traceback from inside a DataLoader worker does not say which of 100k frames is broken.
"""
import difflib
import os
import re
from os import path as osp

import cv2
import lmdb
import numpy as np
import torch
from stdsr.errors import DataError
from stdsr.utils.naming import natural_key  # noqa: F401  (re-exported)

IMG_EXT = '.png'
BACKENDS = ('disk', 'lmdb')

# Keys BasicSR's option parser and build_dataloader read from a dataset's option dict.
LOADER_KEYS = frozenset({
    'name', 'type', 'phase', 'scale', 'io_backend', 'batch_size_per_gpu', 'num_worker_per_gpu',
    'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory', 'persistent_workers', 'num_prefetch_queue', 'use_shuffle'
})

_SHAPE_RE = re.compile(r'^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$')


# ----------------------------------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------------------------------
def check_options(opt, accepted, required, owner):
    """Reject unknown keys (suggesting the nearest valid one) and missing required keys, before any I/O."""
    for key in opt:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ''
            raise DataError(f"{owner}: unknown option key '{key}'{hint}.")
    for key in required:
        if opt.get(key) is None:
            raise DataError(f"{owner}: missing required option key '{key}'.")


def positive_int(opt, key, owner, default=None):
    """Read an integer option that must be >= 1; bools are refused since ``True == 1`` hides typos."""
    value = opt.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{owner}: option '{key}' must be a positive integer, got {value!r}.")
    return value


def io_backend_type(opt, owner):
    """Validate ``io_backend`` and return its type; disk takes no extra kwargs, lmdb passes them to lmdb.open."""
    io_opt = opt.get('io_backend')
    if not isinstance(io_opt, dict) or io_opt.get('type') not in BACKENDS:
        raise DataError(f"{owner}: option 'io_backend' must be a dict with 'type' in {BACKENDS}, got {io_opt!r}.")
    if io_opt['type'] == 'disk' and len(io_opt) > 1:
        extra = sorted(k for k in io_opt if k != 'type')
        raise DataError(f"{owner}: option 'io_backend' of type disk takes no other keys, got {extra}.")
    return io_opt['type']


def frame_stems(num_frames, filename_tmpl='{:08d}', start_frame=0):
    """Frame stems a meta_info clip of ``num_frames`` frames is expected to hold, in temporal order."""
    try:
        return [filename_tmpl.format(start_frame + i) for i in range(num_frames)]
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise DataError(f"option 'filename_tmpl' {filename_tmpl!r} cannot format a frame number: {err}.") from err


# ----------------------------------------------------------------------------------------------------------------------
# meta info files
# ----------------------------------------------------------------------------------------------------------------------
def _parse_shape(token):
    match = _SHAPE_RE.match(token)
    return tuple(int(v) for v in match.groups()) if match else None


def read_video_meta_info(path):
    """Parse a BasicSR video meta_info file: one ``<clip> <num_frames> (<h>,<w>,<c>)`` line per clip.

    Returns a list of ``(clip, num_frames, (h, w, c))`` in file order; blank lines are skipped.
    """
    if not osp.isfile(path):
        raise DataError(f'meta_info file {path} does not exist.')
    entries, seen = [], set()
    with open(path, 'r') as fin:
        for line_no, line in enumerate(fin, start=1):
            if not line.strip():
                continue
            entry = _parse_video_meta_line(line)
            if entry is None:
                raise DataError(f'{path}:{line_no}: malformed meta_info line {line.rstrip()!r}; '
                                'expected "<clip> <num_frames> (<h>,<w>,<c>)".')
            if entry[0] in seen:
                raise DataError(f'{path}:{line_no}: clip {entry[0]!r} is listed twice.')
            seen.add(entry[0])
            entries.append(entry)
    if not entries:
        raise DataError(f'meta_info file {path} lists no clips.')
    return entries


def _parse_video_meta_line(line):
    parts = line.split(maxsplit=2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < 1:
        return None
    shape = _parse_shape(parts[2].strip())
    return None if shape is None else (parts[0], int(parts[1]), shape)


def read_lmdb_meta_info(lmdb_path):
    """Map every key of a BasicSR LMDB to its image shape, from the LMDB's ``meta_info.txt`` (no DB access)."""
    if not osp.isfile(osp.join(lmdb_path, 'data.mdb')):
        raise DataError(f'{lmdb_path} is not an LMDB: data.mdb is missing.')
    meta_path = osp.join(lmdb_path, 'meta_info.txt')
    if not osp.isfile(meta_path):
        raise DataError(f'LMDB meta_info file {meta_path} does not exist.')
    shapes = {}
    with open(meta_path, 'r') as fin:
        for line_no, line in enumerate(fin, start=1):
            if not line.strip():
                continue
            parts = line.split()
            shape = _parse_shape(parts[1]) if len(parts) >= 2 else None
            if shape is None:
                raise DataError(f'{meta_path}:{line_no}: malformed LMDB meta_info line {line.rstrip()!r}; '
                                'expected "<key>.png (<h>,<w>,<c>) <compress>".')
            shapes[osp.splitext(parts[0])[0]] = shape
    return shapes


def group_lmdb_keys(keys, lmdb_path):
    """Group ``<clip>/<frame>`` keys into ``{clip: [frames]}``, clips and frames naturally sorted."""
    clips = {}
    for key in keys:
        if '/' not in key:
            raise DataError(f"LMDB key '{key}' in {lmdb_path} has no '<clip>/' prefix.")
        clip, frame = key.rsplit('/', 1)
        clips.setdefault(clip, []).append(frame)
    return {clip: sorted(clips[clip], key=natural_key) for clip in sorted(clips, key=natural_key)}


# ----------------------------------------------------------------------------------------------------------------------
# clip trees (listing only, no decoding)
# ----------------------------------------------------------------------------------------------------------------------
class ClipTree:
    """One GT or LQ tree, folder or LMDB, answering cheap listing/existence questions without decoding images.

    Disk costs one listdir per asked clip; LMDB reads the LMDB's meta_info.txt once, never the database.
    """

    def __init__(self, root, backend):
        if backend not in BACKENDS:
            raise DataError(f"io_backend type {backend!r} is not one of {BACKENDS}.")
        self.root, self.backend = str(root), backend
        self._lmdb_clips = None
        if backend == 'disk' and not osp.isdir(self.root):
            raise DataError(f'clip tree {self.root} is not a folder.')
        if backend == 'lmdb':
            self._lmdb_clips = group_lmdb_keys(read_lmdb_meta_info(self.root), self.root)

    def locate(self, clip, frame):
        """Human-readable location of one frame, for error messages."""
        if self.backend == 'lmdb':
            return f"key '{clip}/{frame}' in lmdb {self.root}"
        return osp.join(self.root, clip, frame + IMG_EXT)

    def clips(self):
        """All clips of the tree as ``{clip: [frame stems]}``; a clip is any folder (any key prefix) with frames."""
        if self.backend == 'lmdb':
            return {clip: list(frames) for clip, frames in self._lmdb_clips.items()}
        found = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith('.')]  # e.g. .ipynb_checkpoints
            stems = [f[:-len(IMG_EXT)] for f in filenames if f.endswith(IMG_EXT)]
            if stems:
                clip = osp.relpath(dirpath, self.root).replace(os.sep, '/')
                if clip == '.':
                    raise DataError(f'{self.root} holds frames directly; expected <root>/<clip>/<frame>{IMG_EXT}.')
                found[clip] = sorted(stems, key=natural_key)
        if not found:
            raise DataError(f'clip tree {self.root} holds no {IMG_EXT} frames.')
        return {clip: found[clip] for clip in sorted(found, key=natural_key)}

    def frames(self, clip):
        """Frame stems of one clip, naturally sorted; raises naming the folder / LMDB if the clip is absent."""
        if self.backend == 'lmdb':
            if clip not in self._lmdb_clips:
                raise DataError(f"clip '{clip}' has no keys '{clip}/*' in lmdb {self.root}.")
            return list(self._lmdb_clips[clip])
        folder = osp.join(self.root, clip)
        if not osp.isdir(folder):
            raise DataError(f"clip '{clip}': folder {folder} does not exist.")
        stems = [f[:-len(IMG_EXT)] for f in os.listdir(folder) if f.endswith(IMG_EXT)]
        return sorted(stems, key=natural_key)

    def has_clip(self, clip):
        """Whether the tree has a folder (LMDB key prefix) for ``clip``; a listing, no frame is read."""
        if self.backend == 'lmdb':
            return clip in self._lmdb_clips
        return osp.isdir(osp.join(self.root, clip))

    def require(self, clip, stems):
        """Raise naming the first of ``stems`` that the clip lacks."""
        present = set(self.frames(clip))
        for stem in stems:
            if stem not in present:
                raise DataError(f"clip '{clip}': frame {self.locate(clip, stem)} is missing.")


def _clip_list(clips, shown=10):
    clips = sorted(clips, key=natural_key)
    if not clips:
        return 'none'
    return repr(clips[:shown])[:-1] + (f', ... ({len(clips)} in all)]' if len(clips) > shown else ']')


def check_clip_sides(listed, lq_tree, gt_tree=None, meta_info_file=None):
    """GT and LQ hold the clips to score: every clip of ``meta_info_file`` (``listed``) on both sides, or without
    one (``listed`` is then the LQ tree's clips) the same clips on both. A clip on one side only would be dropped
    from the averages, or fail mid-run; one line names the clips and the side."""
    if meta_info_file is None:
        gt_clips = set(gt_tree.clips()) if gt_tree is not None else set(listed)
        missing_gt, missing_lq = set(listed) - gt_clips, gt_clips - set(listed)
    else:
        missing_lq = {clip for clip in listed if not lq_tree.has_clip(clip)}
        missing_gt = {clip for clip in listed if gt_tree is not None and not gt_tree.has_clip(clip)}
    if not (missing_gt or missing_lq):
        return
    if meta_info_file is None:
        raise DataError(f'GT clips in {gt_tree.root} and LQ clips in {lq_tree.root} differ: missing in GT: '
                        f'{_clip_list(missing_gt)}, missing in LQ: {_clip_list(missing_lq)} (give a meta_info_file '
                        'to test on a subset).')
    sides = ([f'missing in GT: {_clip_list(missing_gt)}'] if gt_tree is not None else []) + [
        f'missing in LQ: {_clip_list(missing_lq)}']
    roots = (f'GT {gt_tree.root}, ' if gt_tree is not None else '') + f'LQ {lq_tree.root}'
    raise DataError(f"clips listed in meta_info_file {meta_info_file} are not all there: {', '.join(sides)} "
                    f'({roots}).')


def list_clip_tree(root, backend='disk'):
    """``{clip: [frame stems]}`` of a folder tree or LMDB, clips and frames naturally sorted."""
    return ClipTree(root, backend).clips()


# ----------------------------------------------------------------------------------------------------------------------
# frame reading
# ----------------------------------------------------------------------------------------------------------------------
# One environment per LMDB per process: py-lmdb refuses to open the same environment twice in a process, and a
# forked DataLoader worker inherits that refusal along with the parent's handle. realpath -> (pid, env).
_LMDB_ENVS = {}


def open_lmdb(path, **kwargs):
    """Shared read-only environment of one LMDB (lock=False, readahead=False unless ``kwargs`` say otherwise)."""
    key, pid = osp.realpath(path), os.getpid()
    cached = _LMDB_ENVS.get(key)
    if cached is not None and cached[0] == pid:
        return cached[1]
    if not osp.isfile(osp.join(path, 'data.mdb')):
        raise DataError(f'{path} is not an LMDB: data.mdb is missing.')
    try:
        env = lmdb.open(path, **{'lock': False, 'readahead': False, **kwargs, 'readonly': True})
    except lmdb.Error as err:
        if cached is None or 'already open' not in str(err):
            raise DataError(f'cannot open lmdb {path}: {err}') from err
        env = cached[1]  # the parent's handle, inherited through fork; read-only use of it is safe
    _LMDB_ENVS[key] = (pid, env)
    return env


class FrameReader:
    """Reads frames from disk or LMDB roots; LMDB environments open lazily, on the first read in each process.

    Opening in ``__init__`` would hand one LMDB handle, opened before the fork, to every DataLoader worker.
    The reader itself holds no handle, so datasets stay picklable for spawned workers.
    """

    def __init__(self, io_backend_opt):
        io_backend_opt = dict(io_backend_opt)
        self.backend = io_backend_opt.pop('type', 'disk')
        if self.backend not in BACKENDS:
            raise DataError(f"io_backend type {self.backend!r} is not one of {BACKENDS}.")
        self.lmdb_kwargs = io_backend_opt

    def locate(self, root, clip, frame):
        """Human-readable location of one frame, for error messages."""
        if self.backend == 'lmdb':
            return f"key '{clip}/{frame}' in lmdb {root}"
        return osp.join(root, clip, frame + IMG_EXT)

    def read_bytes(self, root, clip, frame):
        """Encoded bytes of one frame."""
        root = str(root)
        if self.backend == 'disk':
            path = self.locate(root, clip, frame)
            try:
                with open(path, 'rb') as f:
                    return f.read()
            except OSError as err:
                raise DataError(f'cannot read frame {path}: {err}.') from err
        with open_lmdb(root, **self.lmdb_kwargs).begin(write=False) as txn:
            content = txn.get(f'{clip}/{frame}'.encode())
        if content is None:
            raise DataError(f'frame {self.locate(root, clip, frame)} is missing.')
        return content

    def read(self, root, clip, frame):
        """One frame as an HWC float32 BGR array in [0, 1]."""
        content = self.read_bytes(root, clip, frame)
        try:
            img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            img = None
        if img is None:
            raise DataError(f'frame {self.locate(root, clip, frame)} does not decode as an image.')
        return img.astype(np.float32) / 255.

    def read_clip(self, root, clip, frames):
        """Frames of one clip, in the given order."""
        return [self.read(root, clip, frame) for frame in frames]


def check_pair_sizes(gt, lq, scale, gt_where, lq_where):
    """GT must be exactly ``scale`` times LQ; crops and losses silently misalign otherwise."""
    (h_gt, w_gt), (h_lq, w_lq) = gt.shape[:2], lq.shape[:2]
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise DataError(f'GT {gt_where} is {h_gt}x{w_gt} but LQ {lq_where} is {h_lq}x{w_lq}; '
                        f'expected GT = LQ x scale {scale} = {h_lq * scale}x{w_lq * scale}.')


def check_same_size(frames, locations):
    """All frames of a clip must share one size, or stacking them (and cropping them alike) is meaningless."""
    for frame, where in zip(frames[1:], locations[1:]):
        if frame.shape[:2] != frames[0].shape[:2]:
            raise DataError(f'frame {where} is {frame.shape[0]}x{frame.shape[1]} but frame {locations[0]} of the '
                            f'same clip is {frames[0].shape[0]}x{frames[0].shape[1]}.')


def frames_to_tensor(frames):
    """List of HWC BGR float arrays -> (N, 3, H, W) float32 RGB tensor."""
    stack = np.stack([np.ascontiguousarray(f[:, :, ::-1]) for f in frames])
    return torch.from_numpy(np.ascontiguousarray(stack.transpose(0, 3, 1, 2))).float()
