"""Names of files and clips: the order people expect, and names that stay inside their folder."""
import re

_DIGITS_RE = re.compile(r'(\d+)')


def natural_key(name):
    """Sort key that orders ``im2`` before ``im10`` (plain sorting would not), and zero-padded names as usual."""
    return [int(tok) if tok.isdigit() else tok for tok in _DIGITS_RE.split(name)]
