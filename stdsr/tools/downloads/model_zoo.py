"""Fetch BasicSR model-zoo checkpoints by name, verified, resumable and atomic.

BasicSR names every published file ``<stem>-<first 8 hex digits of its SHA-256>.pth`` (its
``scripts/publish_models.py``), so the name alone says what the bytes must hash to. A download goes to
``<file>.part`` (continued with an HTTP Range request when a previous attempt was cut), is hashed, and only
then renamed to its final name: a teacher checkpoint on disk is always complete and the one the zoo meant.
The files live on Google Drive (BasicSR's ``scripts/download_pretrained_models.py`` lists the ids); a
``mirror`` base URL replaces Google Drive with ``<mirror>/<folder>/<file>``.
"""
import os
import re
import shutil
import urllib.error
import urllib.request
from collections import OrderedDict, namedtuple
from os import path as osp
from stdsr.errors import DownloadError
from stdsr.utils.file_hash import sha256_of

DEFAULT_ROOT = 'experiments/pretrained_models'
GDRIVE_URL = 'https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t'
CHUNK = 1 << 20
TIMEOUT_S = 60

# A file of the zoo: BasicSR's (on Google Drive, the hash prefix in its name) or another project's published
# weights (a URL pinned to a commit, and the whole SHA-256, since their names carry no hash).
ZooFile = namedtuple('ZooFile', 'folder file_name gdrive_id url sha256', defaults=(None, None))

# PAN x4 (Zhao et al., ECCV 2020 W.), DF2K, bicubic: the published single-image teacher of the PAN study. Its
# repository states no licence (research use). Its folder is '' so that --root ../shared/pretrained puts it where
# options/train/STD/pan/*.yml read it.
PAN_URL = ('https://github.com/zhaohengyuan1/PAN/raw/4d045d18592c5771cd3990da88f292812774e538/'
           'experiments/pretrained_models/PANx4_DF2K.pth')
PAN_SHA256 = '739fab99ee7b7058dab4d1b84aa2869bb9fc3995a1c08789c20355bee943833c'

# name -> file; BasicSR's names are its file names without the hash. Ids from BasicSR's
# scripts/download_pretrained_models.py ('EDVR', 'flownet' groups). Only the x4 SR models fit a VSR teacher.
ZOO = OrderedDict((f.file_name.rsplit('-', 1)[0] if f.sha256 is None else osp.splitext(f.file_name)[0], f) for f in (
    ZooFile('EDVR', 'EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth', '1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy'),
    ZooFile('EDVR', 'EDVR_L_x4_SR_REDS_official-9f5f5039.pth', '127KXEjlCwfoPC1aXyDkluNwr9elwyHNb'),
    ZooFile('EDVR', 'EDVR_M_x4_SR_REDS_official-32075921.pth', '1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6'),
    ZooFile('EDVR', 'EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth', '1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny'),
    ZooFile('flownet', 'spynet_sintel_final-3d2a1287.pth', '1VZz1cikwTRVX7zXoD247DB7n5Tj_LQpF'),
    ZooFile('', 'PANx4_DF2K.pth', None, PAN_URL, PAN_SHA256),
))
GROUPS = OrderedDict([('EDVR', [n for n, f in ZOO.items() if f.folder == 'EDVR']), ('flownet', ['spynet_sintel_final']),
                      ('PAN', ['PANx4_DF2K']), ('all', list(ZOO))])

_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z0-9]+$')


def hash_prefix(file_name):
    """The SHA-256 prefix BasicSR embeds in a file name (``...-162b54e4.pth`` -> ``162b54e4``), else None."""
    match = _HASH_IN_NAME.search(osp.basename(file_name))
    return match.group(1) if match else None


def verify(path, expected_prefix):
    """Raise DownloadError unless the SHA-256 of ``path`` starts with ``expected_prefix``; returns the digest."""
    digest = sha256_of(path)
    if expected_prefix and not digest.startswith(expected_prefix):
        shown = expected_prefix[:16] + ('...' if len(expected_prefix) > 16 else '')
        raise DownloadError(f'{path}: SHA-256 {digest[:8]}... does not match the {shown} expected (corrupt or a '
                            'different file)')
    return digest


def resolve(names):
    """Zoo names (or group names: EDVR, flownet, all) -> [name], in zoo order, without repeats."""
    chosen = []
    for name in names:
        key = name[:-4] if name.endswith('.pth') else name
        key = key.rsplit('-', 1)[0] if hash_prefix(name) else key
        members = GROUPS.get(key, [key] if key in ZOO else None)
        if members is None:
            raise DownloadError(f"unknown model '{name}'; known: {', '.join(list(GROUPS) + list(ZOO))}")
        chosen += [m for m in members if m not in chosen]
    return chosen


def local_path(name, root=DEFAULT_ROOT):
    """Where BasicSR's option files expect the file: ``<root>/<folder>/<file name>``."""
    entry = ZOO[name]
    return osp.join(root, entry.folder, entry.file_name)


def expected_hash(name):
    """What the file's SHA-256 must start with: the whole digest the zoo pins, else the prefix in BasicSR's name."""
    entry = ZOO[name]
    return entry.sha256 or hash_prefix(entry.file_name)


def url_of(name, mirror=None):
    entry = ZOO[name]
    if mirror:
        return f"{mirror.rstrip('/')}/{'/'.join(p for p in (entry.folder, entry.file_name) if p)}"
    return entry.url or GDRIVE_URL.format(id=entry.gdrive_id)


def copy_verified(src, dest, expected):
    """Copy a local file (an offline mirror such as ../shared/pretrained) to ``dest`` via ``dest.part``, hash-checked
    before the rename, so nothing downloads and a wrong file never takes the final name."""
    part = dest + '.part'
    os.makedirs(osp.dirname(osp.abspath(dest)), exist_ok=True)
    shutil.copyfile(src, part)
    try:
        verify(part, expected)
    except DownloadError:
        os.remove(part)
        raise
    os.replace(part, dest)
    return dest


def _status(response):
    status = getattr(response, 'status', None)
    return status if status is not None else response.getcode()


def download(url, dest, expected_prefix=None, opener=urllib.request.urlopen, log=print):
    """Fetch ``url`` into ``dest`` via ``dest.part``: resumed if present, hash-checked, then renamed atomically."""
    part = dest + '.part'
    os.makedirs(osp.dirname(osp.abspath(dest)), exist_ok=True)
    offset = osp.getsize(part) if osp.isfile(part) else 0
    request = urllib.request.Request(url, headers={'User-Agent': 'stdsr'})
    if offset:
        request.add_header('Range', f'bytes={offset}-')
    try:
        response = opener(request, timeout=TIMEOUT_S)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, 'reason', err)
        raise DownloadError(f'cannot fetch {url} ({reason}); without network, fetch it elsewhere and put it at '
                            f'{dest} (the hash is checked on the next run)') from None
    with response:
        if offset and _status(response) != 206:  # the server ignored the Range header: start over
            log(f'{url}: server cannot resume; restarting {osp.basename(dest)}')
            offset = 0
        content_type = (response.headers.get('Content-Type') or '') if response.headers else ''
        if content_type.startswith('text/html'):
            raise DownloadError(f'{url} returned a web page, not the file (Google Drive quota or sign-in page); '
                                f'download it in a browser and put it at {dest}')
        log(f"{'Resuming' if offset else 'Downloading'} {osp.basename(dest)}" + (f' at {offset} bytes' if offset
                                                                                 else ''))
        try:
            with open(part, 'ab' if offset else 'wb') as f:
                for block in iter(lambda: response.read(CHUNK), b''):
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
        except (urllib.error.URLError, OSError) as err:
            raise DownloadError(f'download of {url} broke off ({err}); rerun to resume from {part}') from None
    try:
        verify(part, expected_prefix)
    except DownloadError:
        os.remove(part)  # a complete but wrong file cannot be resumed into the right one
        raise
    os.replace(part, dest)
    return dest


def fetch(names, root=DEFAULT_ROOT, mirror=None, overwrite=False, opener=urllib.request.urlopen, log=print,
          source_dir=None):
    """Make every named zoo file present and verified under ``root``; returns their paths.

    A file already in place is hashed and kept; a wrong one is an error unless ``overwrite``. With ``source_dir``
    the files are copied from that folder (by file name) instead of downloaded.
    """
    if source_dir and not osp.isdir(source_dir):
        raise DownloadError(f'--from {source_dir}: no such folder')
    paths = []
    for name in resolve(names):
        dest = local_path(name, root)
        expected = expected_hash(name)
        if osp.isfile(dest):
            try:
                verify(dest, expected)
                log(f'{dest}: present, SHA-256 matches {expected}')
                paths.append(dest)
                continue
            except DownloadError:
                if not overwrite:
                    raise DownloadError(f'{dest} exists but its SHA-256 does not start with {expected}; '
                                        'pass --overwrite to fetch it again') from None
                os.remove(dest)
        if source_dir:
            src = osp.join(source_dir, ZOO[name].file_name)
            if not osp.isfile(src):
                raise DownloadError(f'--from {source_dir}: no {ZOO[name].file_name} there')
            paths.append(copy_verified(src, dest, expected))
        else:
            paths.append(download(url_of(name, mirror), dest, expected, opener=opener, log=log))
        log(f'{dest}: SHA-256 matches {expected}')
    return paths
