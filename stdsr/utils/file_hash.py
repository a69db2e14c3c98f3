"""The SHA-256 of a file, read in blocks: what pins a published checkpoint and keys a recorded teacher by content."""
import hashlib

BLOCK = 1 << 20


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(BLOCK), b''):
            digest.update(block)
    return digest.hexdigest()
