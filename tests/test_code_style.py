"""The line length of setup.cfg's ``[flake8]`` section, held without flake8 installed (CI runs only pytest)."""
import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ('stdsr', 'scripts', 'tests')


def max_line_length():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    return cfg.getint('flake8', 'max-line-length')


def test_no_python_line_is_longer_than_setup_cfg_allows():
    limit = max_line_length()
    files = sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob('*.py'))
    assert len(files) > 50  # the walk found the sources
    too_long = [f'{p.relative_to(REPO)}:{n}: {len(line)} characters'
                for p in files for n, line in enumerate(p.read_text(encoding='utf-8').splitlines(), 1)
                if len(line) > limit]
    assert not too_long, f'lines over {limit} characters:\n' + '\n'.join(too_long)
