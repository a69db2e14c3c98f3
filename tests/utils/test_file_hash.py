"""stdsr.utils.file_hash: the one file SHA-256 (zoo pins, recorded teachers), read in blocks."""
import hashlib

from stdsr.utils import file_hash


def test_sha256_of_a_file_longer_than_a_block_equals_hashlib(tmp_path):
    data = bytes(range(256)) * (file_hash.BLOCK // 256 * 2 + 3)  # two blocks and a tail
    path = tmp_path / 'weights.bin'
    path.write_bytes(data)
    assert file_hash.sha256_of(str(path)) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1])
    assert file_hash.sha256_of(str(path)) != hashlib.sha256(data).hexdigest()
