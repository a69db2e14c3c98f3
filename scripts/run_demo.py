"""The main job on the embedded demo data: demo clips -> teacher -> baseline student -> STD student -> table.

Every step is a real entry point (``make_demo_clips.py``, ``python -m stdsr.train``, ``scripts/benchmark.py``)
so the demo exercises exactly what a user runs. A finished step is reused on the next call (delete its
experiment folder, or ``make clean-demo``, to redo it); an interrupted training continues with
``--auto_resume``. The result is printed and written to ``results/demo/summary.md``.
"""
import sys

from stdsr.errors import DemoError
from stdsr.tools.run_demo import main

if __name__ == '__main__':
    try:
        main()
    except DemoError as err:
        sys.exit(f'[demo] {err}')
