"""Super-resolve real footage: a folder of frames or a video file in, PNG frames or a video file out. No GT needed.

The command line over :mod:`stdsr.inference` (chunked, bounded-memory inference; see its docstring for
``--chunk`` and ``--overlap``). Only folders of images and video files (.mp4, .avi, .mov, .mkv, .m4v) whose
first frame decodes are accepted; a video that ends before its header's frame count says how many it read.

Examples:
    python scripts/inference_vsr.py --opt options/train/STD/demo/train_VESPCNS_STD_demo.yml \\
        --input datasets/demo/test/BIx4/chelsea_000 --output results/sr/chelsea_000
    python scripts/inference_vsr.py --ckpt net_g_latest.pth --arch-opt basicvsr.yml --overlap 10 \\
        --input clip_lr.mp4 --output clip_sr.mp4 --device cuda
"""
import sys

from stdsr.tools.inference_vsr import main
from stdsr.utils.cli import run_cli

if __name__ == '__main__':
    sys.exit(run_cli('inference_vsr', main))
