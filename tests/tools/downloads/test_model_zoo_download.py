"""scripts/download_pretrained_models.py and stdsr.tools.downloads.model_zoo: hash check, resume, atomic rename,
no network.

Nothing is fetched from the internet: checkpoints are written by the tests and served by file:// URLs or a fake
opener that honours HTTP Range requests.
"""
import hashlib
import io
import urllib.error
from pathlib import Path

import pytest
import torch

from e2e_helpers import load_script
from stdsr.tools.downloads import model_zoo as dl


def write_named_checkpoint(folder, stem, tensor_seed=0):
    """A ``{'params': ...}`` checkpoint renamed BasicSR-style to ``<stem>-<sha256[:8]>.pth``; returns (path, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f'{stem}.tmp'
    torch.save({'params': {'w': torch.randn(64, generator=torch.Generator().manual_seed(tensor_seed))}}, tmp)
    data = tmp.read_bytes()
    path = folder / f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    tmp.rename(path)
    return path, data


class RangeServer:
    """A fake ``urlopen`` serving fixed bytes; honours ``Range: bytes=N-`` with a 206 like an HTTP server."""

    def __init__(self, data, fail=False):
        self.data, self.fail, self.ranges = data, fail, []

    def __call__(self, request, timeout=None):
        if self.fail:
            raise urllib.error.URLError('[Errno -2] Name or service not known')
        rng = request.get_header('Range')
        self.ranges.append(rng)
        start = int(rng.split('=')[1].rstrip('-')) if rng else 0
        body = io.BytesIO(self.data[start:])
        body.status = 206 if rng else 200
        body.headers = {'Content-Type': 'application/octet-stream'}
        return body


@pytest.fixture
def zoo_entry(tmp_path, monkeypatch):
    """A checkpoint published under a zoo name of its own (the real ones cannot be made to match their hash)."""
    src, data = write_named_checkpoint(tmp_path / 'mirror' / 'EDVR', 'EDVR_tiny_x4_SR_official')
    name = src.name.rsplit('-', 1)[0]
    monkeypatch.setitem(dl.ZOO, name, dl.ZooFile('EDVR', src.name, 'no-such-id'))
    return name, src, data


def test_hash_prefix_is_read_from_basicsr_names():
    assert dl.hash_prefix('EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth') == '162b54e4'
    assert dl.hash_prefix('experiments/x/spynet_sintel_final-3d2a1287.pth') == '3d2a1287'
    assert dl.hash_prefix('net_g_latest.pth') is None
    for name in dl.ZOO:  # every zoo file carries its hash (in its name, or pinned whole), so every download is checked
        assert dl.expected_hash(name) and len(dl.expected_hash(name)) >= 8, name


def test_names_groups_and_file_names_resolve_to_zoo_entries():
    assert dl.resolve(['EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth']) == ['EDVR_L_x4_SR_Vimeo90K_official']
    edvr = dl.resolve(['EDVR'])
    assert 'EDVR_M_x4_SR_REDS_official' in edvr and 'spynet_sintel_final' not in edvr
    both = dl.resolve(['EDVR_M_x4_SR_REDS_official', 'all'])  # in the order asked, each once
    assert both[0] == 'EDVR_M_x4_SR_REDS_official' and sorted(both) == sorted(dl.ZOO)
    assert dl.local_path('EDVR_M_x4_SR_REDS_official', 'root') == \
        'root/EDVR/EDVR_M_x4_SR_REDS_official-32075921.pth'
    with pytest.raises(dl.DownloadError, match="unknown model 'EDVR_XL'"):
        dl.resolve(['EDVR_XL'])


def test_download_verifies_and_renames_atomically(tmp_path, zoo_entry):
    name, src, data = zoo_entry
    dest = str(tmp_path / 'out' / src.name)
    assert dl.download(src.as_uri(), dest, dl.hash_prefix(dest), log=lambda *a: None) == dest
    assert Path(dest).read_bytes() == data
    assert not Path(dest + '.part').exists()


def test_a_file_that_does_not_match_its_name_is_rejected_and_not_kept(tmp_path, zoo_entry):
    _, src, _ = zoo_entry
    dest = str(tmp_path / 'out' / 'EDVR_tiny_x4_SR_official-00000000.pth')
    with pytest.raises(dl.DownloadError, match='does not match the 00000000'):
        dl.download(src.as_uri(), dest, '00000000', log=lambda *a: None)
    assert not Path(dest).exists() and not Path(dest + '.part').exists()


def test_a_cut_download_resumes_from_its_part_file(tmp_path, zoo_entry):
    _, src, data = zoo_entry
    dest = tmp_path / 'out' / src.name
    dest.parent.mkdir()
    Path(str(dest) + '.part').write_bytes(data[:1000])
    server = RangeServer(data)
    dl.download('https://zoo.invalid/x.pth', str(dest), dl.hash_prefix(dest.name), opener=server, log=lambda *a: None)
    assert server.ranges == ['bytes=1000-']
    assert dest.read_bytes() == data


def test_a_server_that_ignores_range_restarts_the_file(tmp_path, zoo_entry):
    _, src, data = zoo_entry
    dest = tmp_path / 'out' / src.name
    dest.parent.mkdir()
    Path(str(dest) + '.part').write_bytes(b'garbage that must not stay in front')
    dl.download(src.as_uri(), str(dest), dl.hash_prefix(dest.name), log=lambda *a: None)  # file:// ignores Range
    assert dest.read_bytes() == data


def test_no_network_is_one_clear_error_naming_where_to_put_the_file(tmp_path, zoo_entry):
    name = zoo_entry[0]
    with pytest.raises(dl.DownloadError) as err:
        dl.fetch([name], str(tmp_path / 'pm'), opener=RangeServer(b'', fail=True), log=lambda *a: None)
    message = str(err.value)
    assert '\n' not in message and 'Name or service not known' in message
    assert dl.local_path(name, str(tmp_path / 'pm')) in message
    assert not list((tmp_path / 'pm').rglob('*.pth'))


def test_fetch_keeps_a_verified_file_and_refuses_a_wrong_one(tmp_path, zoo_entry):
    name, src, data = zoo_entry
    root = str(tmp_path / 'pm')
    never = RangeServer(b'', fail=True)
    dest = Path(dl.local_path(name, root))
    dest.parent.mkdir(parents=True)
    dest.write_bytes(data)
    assert dl.fetch([name], root, opener=never, log=lambda *a: None) == [str(dest)]  # no request made
    dest.write_bytes(data[:-1])
    with pytest.raises(dl.DownloadError, match='--overwrite'):
        dl.fetch([name], root, opener=never, log=lambda *a: None)
    dl.fetch([name], root, opener=RangeServer(data), overwrite=True, log=lambda *a: None)
    assert dest.read_bytes() == data


def test_script_fetches_from_a_mirror_and_fails_in_one_line(tmp_path, zoo_entry):
    name, src, data = zoo_entry
    script = load_script('download_pretrained_models')
    root = tmp_path / 'pm'
    mirror = (tmp_path / 'mirror').as_uri()
    assert script.main([name, '--root', str(root), '--mirror', mirror]) == 0
    assert Path(dl.local_path(name, str(root))).read_bytes() == data
    with pytest.raises(SystemExit) as exc:
        script.main([name, '--root', str(tmp_path / 'other'), '--mirror', (tmp_path / 'nowhere').as_uri()])
    assert str(exc.value).startswith('download_pretrained_models: error: cannot fetch')


def test_pan_is_pinned_by_commit_and_whole_sha256_and_copies_from_a_local_folder(tmp_path, capsys):
    """PAN's name has no hash: the zoo pins the source commit and the whole SHA-256; --from copies a local file
    (as ../shared/pretrained) through the same check, and a different file never takes the final name."""
    assert dl.resolve(['PAN']) == ['PANx4_DF2K']
    assert '/4d045d18592c5771cd3990da88f292812774e538/' in dl.url_of('PANx4_DF2K')
    assert dl.local_path('PANx4_DF2K', str(tmp_path / 'root')) == str(tmp_path / 'root' / 'PANx4_DF2K.pth')
    assert dl.expected_hash('PANx4_DF2K') == dl.PAN_SHA256 and len(dl.PAN_SHA256) == 64
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / 'PANx4_DF2K.pth').write_bytes(b'not the published weights')
    root = tmp_path / 'root'
    with pytest.raises(dl.DownloadError, match='does not match the 739fab99ee7b7058'):
        dl.fetch(['PANx4_DF2K'], str(root), source_dir=str(mirror), log=lambda *_: None)
    assert not root.exists() or not any(root.iterdir())  # neither the final name nor a .part is left
    with pytest.raises(dl.DownloadError, match='no such folder'):
        dl.fetch(['PANx4_DF2K'], str(root), source_dir=str(tmp_path / 'missing'), log=lambda *_: None)
    shared = Path(__file__).resolve().parents[3] / 'shared' / 'pretrained'
    if (shared / 'PANx4_DF2K.pth').is_file():  # the real file, where this checkout has ../shared
        script = load_script('download_pretrained_models')
        assert script.main(['PANx4_DF2K', '--from', str(shared), '--root', str(root)]) == 0
        assert dl.sha256_of(str(root / 'PANx4_DF2K.pth')) == dl.PAN_SHA256
