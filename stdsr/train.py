"""``python -m stdsr.train -opt FILE.yml``: BasicSR's training loop, on CPU or CUDA, single or torchrun.

The entry point only: the loop lives in :mod:`stdsr.engine.training` so that tools can run it in-process
without importing an entry point.
"""
import sys

from stdsr.engine.training import train_pipeline
from stdsr.runtime.dist import destroy_dist
from stdsr.utils.cli import run_cli


def main(argv=None):
    try:
        return run_cli('stdsr.train', train_pipeline, argv)
    finally:
        destroy_dist()


if __name__ == '__main__':
    sys.exit(main())
