"""Is a run's F^SR alive, checkpoint by checkpoint? A shim over :mod:`stdsr.tools.fsr_health` (``--help`` lists the
arguments)."""
import sys

from stdsr.tools.fsr_health import cli

if __name__ == '__main__':
    sys.exit(cli())
