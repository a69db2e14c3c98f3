"""Run once on a GPU machine: a few training steps of a tiny teacher/student pair on every CUDA path.

Examples::

    python scripts/check_gpu.py                       # every check; prints a pass/fail table
    python scripts/check_gpu.py --only fp32 amp-bf16  # some of them
    python scripts/check_gpu.py --json gpu_check.json

Checks: fp32, AMP fp16 and bf16, torch.compile, channels_last, train.deterministic, prefetch_mode cuda, an EDVR pair
(deform_conv2d) and torchrun with 2 processes (where 2 GPUs exist). Each runs in its own process. Without
CUDA it says so and exits with 0; ``--device cpu`` runs the same checks on the CPU (to test the script).
Exit code 1 when a check failed. The logic lives in ``stdsr/tools/gpu_check.py``.
"""
import sys

from stdsr.tools.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
