"""Compare distillation methods under equal budgets: the command line of ``stdsr.tools.compare``.

    python scripts/compare_distillation.py --plan options/train/STD/demo/plan_compare_demo.yml
    python scripts/compare_distillation.py --opts A.yml B.yml --baseline base.yml --seeds 0 1 2 --iters 20000

See ``docs/distillation_methods.md``.
"""
import sys

from stdsr.tools.compare import main

if __name__ == '__main__':
    sys.exit(main())
