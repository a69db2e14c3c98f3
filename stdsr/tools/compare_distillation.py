"""``scripts/compare_distillation.py``: compare distillation methods under equal budgets on the user's own data.

The study itself (plan, runs, summary) is the library :mod:`stdsr.tools.comparison`; its runner's docstring has
the examples, ``--help`` lists the arguments.
"""
import sys

from stdsr.config.options import OptionError
from stdsr.errors import CompareError
from stdsr.tools.comparison.plan import build_arg_parser, resolve_settings
from stdsr.tools.comparison.runner import run_comparison


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    try:
        run_comparison(resolve_settings(args))
    except (CompareError, OptionError) as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
