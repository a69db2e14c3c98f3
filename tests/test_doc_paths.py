"""Every test file (and ``file::name``) the docs point a reader to exists: the layout moves, the docs must follow."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / 'docs').rglob('*.md')) + [REPO / 'datasets' / 'README.md', REPO / 'README.md']
REFERENCE = re.compile(r'(tests/[\w/]+\.py)(?:::(\w+))?')


def test_test_paths_named_in_the_docs_exist():
    stale = []
    for doc in DOCS:
        for path, name in REFERENCE.findall(doc.read_text()):
            target = REPO / path
            if not target.is_file() or (name and not re.search(rf'\b{name}\b', target.read_text())):
                stale.append(f'{doc.relative_to(REPO)}: {path}{"::" + name if name else ""}')
    assert not stale, 'docs name tests that do not exist:\n' + '\n'.join(stale)


SOURCE = re.compile(r'\b((?:stdsr|scripts|options)/[\w./-]+\.(?:py|yml))')


def test_source_scripts_and_option_files_named_in_the_docs_exist():
    stale = [f'{doc.relative_to(REPO)}: {path}' for doc in DOCS for path in SOURCE.findall(doc.read_text())
             if not (REPO / path).is_file()]
    assert not stale, 'docs name files that do not exist:\n' + '\n'.join(stale)
