"""Official VSR downloads -> the layout the option files read: the command line of
:mod:`stdsr.data.preparation.vsr_recipes` (see its docstring for what each sub-command writes).

    python scripts/data_preparation/prepare_vsr_datasets.py vimeo90k --input datasets/raw/vimeo_septuplet --workers 8
    python scripts/data_preparation/prepare_vsr_datasets.py reds --input datasets/raw/REDS
    python scripts/data_preparation/prepare_vsr_datasets.py vid4 --input datasets/raw/Vid4/GT
"""
import sys

from stdsr.tools.prepare_vsr_datasets import main

if __name__ == '__main__':
    sys.exit(main())
