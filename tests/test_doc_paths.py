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
