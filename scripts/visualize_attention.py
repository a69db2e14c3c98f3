"""Show what distillation transferred: F^SR attention maps of teacher and students, and SR crops side by side.

The command line over :mod:`stdsr.tools.attention_figures`: for each chosen frame of one clip, writes
``attention_<clip>_<frame>.png`` (F^SR attention maps, rows = networks in command-line order, as the paper's
Fig. 3) and ``crops_<clip>_<frame>.png`` (a crop from bicubic, every network and GT, with PSNR-Y) to ``--output``.

Example (the demo's baseline, STD student and teacher on the first demo test clip):
    python scripts/visualize_attention.py --opt baseline=options/train/STD/demo/train_VESPCNS_baseline_demo.yml \\
        --opt STD=options/train/STD/demo/train_VESPCNS_STD_demo.yml \\
        --opt teacher=options/train/STD/demo/train_VESPCN_teacher_demo.yml \\
        --gt datasets/demo/test/GT/chelsea_000 --lq datasets/demo/test/BIx4/chelsea_000 \\
        --frames 2,4 --crop 16,16,32,32 --output results/attention
"""
import sys

from stdsr.tools.visualize_attention import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('visualize_attention', main))
