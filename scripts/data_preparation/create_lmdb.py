"""Pack video frame trees into LMDBs for BasicSR's video datasets.

The command line over :mod:`stdsr.data.preparation.lmdb_writer`. Modes (sub-commands):
    folder    generic clip tree ``<input>/<clip>/<frame>.png`` -> keys ``<clip>/<frame stem>``
    vimeo90k  ``<input>/sequences/<00001>/<0001>/im1..im7.png`` listed in ``--list-file`` -> keys ``00001/0001/im1``
              (``--center-only`` keeps im4 only, as BasicSR's GT LMDB does)
    reds      ``<input>/train_sharp/<000>/<00000000>.png`` and ``<input>/train_sharp_bicubic/X4/...``
              -> ``<input>/train_sharp.lmdb`` and ``<input>/train_sharp_bicubic.lmdb`` with keys ``000/00000000``

Each LMDB gets BasicSR's own ``meta_info.txt``; ``--meta-info PATH`` also writes the data-set level file in
BasicSR's video format (``<clip> <num_frames> (h,w,c)``). An LMDB appears only once complete.

Examples:
    python scripts/data_preparation/create_lmdb.py folder --input datasets/demo/train/GT \\
        --output datasets/demo/train_GT.lmdb
    python scripts/data_preparation/create_lmdb.py vimeo90k --input datasets/vimeo90k/vimeo_septuplet \\
        --output datasets/vimeo90k/vimeo90k_train_GT.lmdb --list-file datasets/vimeo90k/sep_trainlist.txt
    python scripts/data_preparation/create_lmdb.py reds --input datasets/REDS
"""
import sys

from stdsr.tools.create_lmdb import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('create_lmdb', main))
