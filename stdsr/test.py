"""``python -m stdsr.test -opt FILE.yml``: evaluate a trained network on every ``datasets.test_*`` set.

The entry point only: the loop lives in :mod:`stdsr.engine.testing` so that tools can run it in-process
without importing an entry point.
"""
import sys

from stdsr.engine.testing import test_pipeline
from stdsr.runtime.dist import destroy_dist
from stdsr.utils.cli import run_cli


def main(argv=None):
    try:
        return run_cli('stdsr.test', test_pipeline, argv)
    finally:
        destroy_dist()


if __name__ == '__main__':
    sys.exit(main())
