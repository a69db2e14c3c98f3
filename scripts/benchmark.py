"""Benchmark trained VSR models on clip trees or LMDBs: PSNR/SSIM (Y), tOF, runtime per frame, parameters.

The command line over :mod:`stdsr.tools.benchmark`. Writes ``results.{md,csv,json}`` and
``psnr_vs_runtime.png`` to ``--output``. Examples (after ``make demo``; see docs/benchmark.md):
    python scripts/benchmark.py --opt baseline=options/train/STD/demo/train_VESPCNS_baseline_demo.yml \\
        --opt STD=options/train/STD/demo/train_VESPCNS_STD_demo.yml --demo datasets/demo --output results/bench
    python scripts/benchmark.py --ckpt STD=net_g_latest.pth --arch-opt edvr_s.yml \\
        --dataset Vid4=datasets/Vid4/GT,datasets/Vid4/BIx4 --dataset Vid4-BD=datasets/Vid4/GT --degradation BD \\
        --crop-border 0 --output results/bench_vid4
"""
import sys

from stdsr.tools.benchmark.cli import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('benchmark', main))
